//! Every text a person reads in a report, in Uzbek (Latin) and Russian, in one place.
//!
//! Files (XLSX, CSV, the HTML file) carry both languages (`"Javob berilgan / Отвечено"`);
//! the desk's reports page shows the reader's language.

/// A text in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L {
    /// Uzbek, Latin script.
    pub uz: &'static str,
    /// Russian.
    pub ru: &'static str,
}

/// Which language(s) a report is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Uzbek only.
    Uz,
    /// Russian only.
    Ru,
    /// Both, `uz / ru` (files).
    Both,
}

impl Lang {
    /// The text of `l` in this language.
    pub fn of(self, l: L) -> String {
        match self {
            Lang::Uz => l.uz.to_owned(),
            Lang::Ru => l.ru.to_owned(),
            Lang::Both if l.uz == l.ru => l.uz.to_owned(),
            Lang::Both => format!("{} / {}", l.uz, l.ru),
        }
    }

    /// A configured bilingual text (tenant names, topic labels) in this language.
    pub fn of_config(self, b: &crate::config::Bilingual) -> String {
        match self {
            Lang::Uz => b.uz.clone(),
            Lang::Ru => b.ru.clone(),
            Lang::Both if b.uz == b.ru => b.uz.clone(),
            Lang::Both => format!("{} / {}", b.uz, b.ru),
        }
    }

    /// The HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Uz | Lang::Both => "uz",
            Lang::Ru => "ru",
        }
    }
}

macro_rules! texts {
    ($($name:ident = $uz:literal, $ru:literal;)+) => {
        $(
            #[doc = concat!("\"", $uz, "\" / \"", $ru, "\"")]
            pub const $name: L = L { uz: $uz, ru: $ru };
        )+
    };
}

texts! {
    TITLE = "Oylik statistika", "Статистика за месяц";
    TENANT = "Mijoz", "Клиент";
    MONTH = "Oy", "Месяц";
    TIME_ZONE = "Vaqt mintaqasi", "Часовой пояс";
    SUMMARY = "Xulosa", "Сводка";
    FIGURE = "Ko'rsatkich", "Показатель";
    VALUE = "Qiymat", "Значение";
    OFFERED = "Kelgan qo'ng'iroqlar", "Поступило звонков";
    ANSWERED = "Javob berilgan", "Отвечено";
    MISSED = "O'tkazib yuborilgan", "Пропущено";
    DEFLECTED = "O'z-o'ziga xizmat (IVR)", "Самообслуживание (IVR)";
    CALLBACK_REQUESTED = "Qayta qo'ng'iroq so'ralgan", "Запрошен обратный звонок";
    CALLED_BACK = "Qayta qo'ng'iroq qilingan", "Перезвонили";
    OTHER_ENDS = "Boshqa (IVR, nosozlik, tugamagan)", "Прочие (IVR, сбой, не завершён)";
    QUEUED = "Navbatga kirgan", "Поступило в очередь";
    SERVICE_LEVEL = "Xizmat darajasi", "Уровень обслуживания";
    SL_TARGET = "Xizmat darajasi chegarasi, s", "Порог уровня обслуживания, с";
    IN_SL = "Chegarada javob berilgan", "Отвечено в пределах порога";
    WAIT_P50 = "Kutish p50, s", "Ожидание p50, с";
    WAIT_P90 = "Kutish p90, s", "Ожидание p90, с";
    WAIT_P95 = "Kutish p95, s", "Ожидание p95, с";
    WAIT_AVG = "O'rtacha kutish, s", "Среднее ожидание, с";
    TALK_TOTAL = "Suhbat vaqti, jami, s", "Время разговоров, всего, с";
    TALK_AVG = "O'rtacha suhbat, s", "Средний разговор, с";
    HOLD_TOTAL = "Kutishda ushlab turish, jami, s", "Удержание, всего, с";
    HOLD_AVG = "O'rtacha ushlab turish, s", "Среднее удержание, с";
    WRAP_TOTAL = "Qo'ng'iroqdan keyingi ish, jami, s", "Поствызывная обработка, всего, с";
    WRAP_AVG = "O'rtacha keyingi ish, s", "Средняя поствызывная обработка, с";
    SURGE_CALLS = "Yuqori yuklama rejimidagi qo'ng'iroqlar", "Звонки в режиме пиковой нагрузки";
    OUTCOMES = "Natijalar", "Исходы";
    OUTCOME = "Natija", "Исход";
    CALLS = "Qo'ng'iroqlar", "Звонки";
    SHARE = "Ulush, %", "Доля, %";
    DAYS = "Kunlar bo'yicha", "По дням";
    DAY = "Kun", "День";
    TOPICS = "Mavzular", "Темы";
    TOPIC = "Mavzu", "Тема";
    TOPIC_CODE = "Kod", "Код";
    IVR_TOPIC = "IVR tanlovi", "Выбор в IVR";
    IVR_ANSWERED = "IVR tanlovi, javob berilgan", "Выбор в IVR, отвечено";
    OPERATOR_TOPIC = "Operator tasnifi", "Классификация оператора";
    AGREE = "Mos kelgan", "Совпало";
    CATEGORIES = "Toifalar", "Категории";
    CATEGORY = "Toifa", "Категория";
    RESOLVED = "Hal qilingan", "Решено";
    UNRESOLVED = "Hal qilinmagan", "Не решено";
    DISPUTED = "Bahsli", "Спорное";
    NOT_CLASSIFIED = "Tasniflanmagan (javob berilgan)", "Не классифицировано (отвечено)";
    TOTAL = "Jami", "Итого";
    OPERATORS = "Operatorlar", "Операторы";
    OPERATOR = "Operator", "Оператор";
    EXT = "Raqam", "Номер";
    NAME = "Ism", "Имя";
    HANDLE_TOTAL = "Ishlov vaqti, jami, s", "Время обработки, всего, с";
    HANDLE_AVG = "O'rtacha ishlov, s", "Среднее время обработки, с";
    DISPOSITIONS = "Tasniflangan", "Классифицировано";
    RESOLVED_SHARE = "Hal qilingan ulushi, %", "Доля решённых, %";
    QA_SCORE = "Sifat bahosi", "Оценка качества";
    QA_COUNT = "Baholangan qo'ng'iroqlar", "Оценено звонков";
    REPEAT = "Takroriy qo'ng'iroqlar", "Повторные звонки";
    CALLERS = "Qo'ng'iroq qilganlar", "Звонивших";
    REPEAT_CALLERS = "Bir necha marta qo'ng'iroq qilganlar", "Звонили более одного раза";
    REPEAT_SHARE = "Takroriy qo'ng'iroq qilganlar ulushi, %", "Доля повторно звонивших, %";
    REPEAT_CALLS = "Ulardan kelgan qo'ng'iroqlar", "Звонков от них";
    MARKED_REPEATS = "Takroriy deb belgilangan qo'ng'iroqlar", "Звонков, отмеченных как повторные";
    ANONYMOUS = "Raqamsiz qo'ng'iroqlar", "Звонков без номера";
    TIMES = "Necha marta", "Сколько раз";
    NUMBER = "Raqam (yashirilgan)", "Номер (скрыт)";
    TOP_REPEATERS = "Eng ko'p qo'ng'iroq qilganlar", "Чаще всего звонившие";
    REQUESTS = "Murojaatlar", "Обращения";
    CHANNEL = "Kanal", "Канал";
    PRIORITY = "Muhimlik", "Приоритет";
    SLA = "Muddat (SLA)", "Срок (SLA)";
    SLA_MET = "Muddatida", "В срок";
    SLA_BREACHED = "Muddati buzilgan", "Срок нарушен";
    SLA_OPEN = "Ochiq, muddati buzilmagan", "Открыто, срок не нарушен";
    CLOCK = "Soat", "Часы";
    SURGE = "Yuqori yuklama davrlari", "Периоды пиковой нагрузки";
    FROM = "Boshlanishi", "Начало";
    TO = "Tugashi", "Конец";
    MINUTES = "Daqiqa", "Минут";
    SWITCHED_BY = "Kim yoqdi", "Кто включил";
    ABANDONED = "Tashlab ketilgan", "Брошено";
    NO_SURGE = "Bu oyda yuqori yuklama rejimi bo'lmagan", "В этом месяце режима пиковой нагрузки не было";
    DETAILS = "Qo'ng'iroqlar tafsiloti", "Детали звонков";
    TIME = "Vaqt", "Время";
    LANGUAGE = "Til", "Язык";
    RESOLUTION = "Hal qilinishi", "Решение";
    WAIT = "Kutish, s", "Ожидание, с";
    TALK = "Suhbat, s", "Разговор, с";
    HOLD = "Ushlab turish, s", "Удержание, с";
    WRAP = "Keyingi ish, s", "Обработка, с";
    SURGE_FLAG = "Yuqori yuklama", "Пик";
    RECORDING = "Yozuv", "Запись";
    LINK = "Havola", "Ссылка";
    CALL_ID = "Qo'ng'iroq", "Звонок";
    YES = "ha", "да";
    NO = "yo'q", "нет";
    DETAILS_CAPPED = "Sahifada birinchi qo'ng'iroqlar; to'liq ro'yxat XLSX va CSV faylida", "На странице первые звонки; полный список в файлах XLSX и CSV";
    INVOICE = "Hisob", "Счёт";
    CURRENCY = "Valyuta", "Валюта";
    PRICING = "Narxlash", "Тарификация";
    PRICING_VOLUME = "Butun hajm erishilgan pog'ona narxida", "Весь объём по цене достигнутой ступени";
    PRICING_GRADUATED = "Har bir qism o'z pog'onasi narxida", "Каждая часть по цене своей ступени";
    BILLABLE = "Hisoblanadigan natijalar", "Оплачиваемые исходы";
    VOLUME = "Hisoblanadigan qo'ng'iroqlar", "Оплачиваемых звонков";
    TIER = "Pog'ona", "Ступень";
    TIER_RANGE = "Pog'ona chegarasi", "Границы ступени";
    UNIT_PRICE = "Bir qo'ng'iroq narxi", "Цена одного звонка";
    AMOUNT = "Summa", "Сумма";
    LINES_FROM = "Qo'ng'iroqdan", "С звонка";
    LINES_TO = "Qo'ng'iroqgacha", "По звонок";
    NO_BILLING = "Bu mijoz uchun narx belgilanmagan ([tenant.billing])", "Для клиента не задана цена ([tenant.billing])";
    LIVE_NOTE = "Grafana'dagi oylik panel jonli ko'rinish; hisobot esa rasmiy hujjat", "Месячная панель Grafana — живой обзор; отчёт — официальный документ";
    NONE = "(yo'q)", "(нет)";
    DOWNLOAD = "Yuklab olish", "Скачать";
    SHOW = "Ko'rsatish", "Показать";
    LISTEN = "Tinglash", "Слушать";
    OPEN = "Ochish", "Открыть";
    GENERATED = "Tuzilgan", "Сформирован";
}

/// An outcome's name.
pub fn outcome(name: &str) -> L {
    match name {
        "answered" => ANSWERED,
        "abandoned" => ABANDONED,
        "timed_out" => L {
            uz: "Kutish muddati tugagan",
            ru: "Истекло ожидание",
        },
        "blocked" => L {
            uz: "Bloklangan (liniyalar band)",
            ru: "Заблокирован (линии заняты)",
        },
        "closed" => L {
            uz: "Ish vaqtidan tashqari",
            ru: "Вне рабочего времени",
        },
        "ivr_hangup" => L {
            uz: "IVR'da tugagan",
            ru: "Завершён в IVR",
        },
        "failed" => L {
            uz: "Texnik nosozlik",
            ru: "Технический сбой",
        },
        "deflected" => DEFLECTED,
        "callback_requested" => CALLBACK_REQUESTED,
        _ => L {
            uz: "Tugamagan",
            ru: "Не завершён",
        },
    }
}

/// A category's name.
pub fn category(name: &str) -> L {
    match name {
        "question" => L {
            uz: "Savol",
            ru: "Вопрос",
        },
        "complaint" => L {
            uz: "Shikoyat",
            ru: "Жалоба",
        },
        "suggestion" => L {
            uz: "Taklif",
            ru: "Предложение",
        },
        "application" => L {
            uz: "Ariza",
            ru: "Заявление",
        },
        _ => NONE,
    }
}

/// A disposition's resolution.
pub fn resolution(name: &str) -> L {
    match name {
        "resolved" => RESOLVED,
        "unresolved" => UNRESOLVED,
        "disputed" => DISPUTED,
        _ => NONE,
    }
}

/// A request channel.
pub fn channel(name: &str) -> L {
    match name {
        "phone" => L {
            uz: "Telefon",
            ru: "Телефон",
        },
        "email" => L {
            uz: "Elektron pochta",
            ru: "Электронная почта",
        },
        "telegram" => L {
            uz: "Telegram",
            ru: "Telegram",
        },
        "web" => L {
            uz: "Veb-shakl",
            ru: "Веб-форма",
        },
        _ => NONE,
    }
}

/// A request priority.
pub fn priority(name: &str) -> L {
    match name {
        "critical" => L {
            uz: "Favqulodda",
            ru: "Критический",
        },
        "high" => L {
            uz: "Yuqori",
            ru: "Высокий",
        },
        "normal" => L {
            uz: "Oddiy",
            ru: "Обычный",
        },
        "low" => L {
            uz: "Past",
            ru: "Низкий",
        },
        _ => NONE,
    }
}

/// An SLA clock.
pub fn clock(name: &str) -> L {
    match name {
        "first_answer" => L {
            uz: "Birinchi javob",
            ru: "Первый ответ",
        },
        "out_of_hours_contact" => L {
            uz: "Ish vaqtidan keyingi aloqa",
            ru: "Связь после нерабочего времени",
        },
        "resolution" => L {
            uz: "Hal qilish",
            ru: "Решение",
        },
        "moderation" => L {
            uz: "Moderatsiya",
            ru: "Модерация",
        },
        _ => NONE,
    }
}

/// A language code's name.
pub fn language(code: &str) -> L {
    match code {
        "uz" => L {
            uz: "O'zbek",
            ru: "Узбекский",
        },
        "ru" => L {
            uz: "Rus",
            ru: "Русский",
        },
        _ => NONE,
    }
}
