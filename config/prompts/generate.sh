#!/usr/bin/env bash
# Regenerates navbat's synthetic prompts: 8 kHz, 16-bit, mono WAV, in Uzbek (Latin) and
# Russian, with espeak-ng (voices "uz" and "ru") and sox. The results are committed, so
# neither tool is needed to build, test or run navbat.
#
# A deployment replaces any of them with recorded voices by dropping in a file of the same
# name (same format). Layout:
#   <lang>/<name>.wav            every tenant
#   <tenant>/<lang>/<name>.wav   one tenant's own version (looked up first)
#   hold-music.wav               music while queued (language-free)
set -euo pipefail
cd "$(dirname "$0")"
for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool is required" >&2; exit 1; }
done

say() { # say <lang> <file> <text>
    local lang=$1 out=$2 text=$3 tmp
    tmp=$(mktemp --suffix=.wav)
    mkdir -p "$(dirname "$out")"
    espeak-ng -v "$lang" -s 150 -w "$tmp" "$text"
    # 8 kHz mono 16-bit, a little headroom, 150 ms of silence after each prompt.
    sox "$tmp" -r 8000 -c 1 -b 16 "$out" gain -n -3 pad 0 0.15
    rm -f "$tmp"
}

# --- every tenant ---------------------------------------------------------------------
say uz uz/greeting.wav "Assalomu alaykum. Qo'ng'iroq qilganingiz uchun rahmat."
say ru ru/greeting.wav "Здравствуйте. Спасибо за звонок."
say uz uz/choose-language.wav "O'zbek tili uchun birni bosing."
say ru ru/choose-language.wav "Для русского языка нажмите два."
say uz uz/choose-topic.wav "Savolingiz mavzusini tanlang."
say ru ru/choose-topic.wav "Выберите тему вашего вопроса."
say uz uz/invalid-choice.wav "Bunday tanlov yo'q."
say ru ru/invalid-choice.wav "Такого варианта нет."
say uz uz/goodbye.wav "Qo'ng'iroq uchun rahmat. Xayr."
say ru ru/goodbye.wav "Спасибо за звонок. До свидания."
say uz uz/closed.wav "Hozir ish vaqti emas. Biz dushanbadan jumagacha soat sakkizdan yigirmagacha ishlaymiz. Iltimos, ish vaqtida qo'ng'iroq qiling."
say ru ru/closed.wav "Сейчас нерабочее время. Мы работаем с понедельника по пятницу с восьми до двадцати часов. Пожалуйста, позвоните в рабочее время."
say uz uz/please-wait.wav "Barcha operatorlar band. Iltimos, kuting, sizga albatta javob beramiz."
say ru ru/please-wait.wav "Все операторы заняты. Пожалуйста, оставайтесь на линии, вам обязательно ответят."
# Announcements: "<place-in-queue> N", "<expected-wait-minutes> M", "<over-twenty>".
say uz uz/place-in-queue.wav "Navbatdagi o'rningiz:"
say ru ru/place-in-queue.wav "Ваш номер в очереди:"
say uz uz/expected-wait-minutes.wav "Taxminiy kutish vaqti, daqiqalarda:"
say ru ru/expected-wait-minutes.wav "Ожидаемое время ожидания, в минутах:"
say uz uz/over-twenty.wav "yigirmadan ko'p"
say ru ru/over-twenty.wav "больше двадцати"
uz_numbers=(bir ikki uch to\'rt besh olti yetti sakkiz to\'qqiz o\'n "o'n bir" "o'n ikki" "o'n uch" "o'n to'rt" "o'n besh" "o'n olti" "o'n yetti" "o'n sakkiz" "o'n to'qqiz" yigirma)
ru_numbers=(один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать двадцать)
for i in $(seq 1 20); do
    say uz "uz/number-$i.wav" "${uz_numbers[$((i - 1))]}"
    say ru "ru/number-$i.wav" "${ru_numbers[$((i - 1))]}"
done

# --- the DTM hotline (tenant "dtm"): greeting with useful information (D5), topic menu -----
say uz dtm/uz/greeting.wav "Davlat test markazi ishonch telefoniga xush kelibsiz. Test natijalarini markaz saytida shaxsiy kabinetingiz orqali ham bilishingiz mumkin."
say ru dtm/ru/greeting.wav "Вы позвонили на горячую линию Государственного центра тестирования. Результаты тестов можно узнать и в личном кабинете на сайте центра."
say uz dtm/uz/choose-topic.wav "Ro'yxatdan o'tish va arizalar uchun birni, test natijalari uchun ikkini, shikoyat va apellyatsiya uchun uchni, boshqa savollar uchun nolni bosing."
say ru dtm/ru/choose-topic.wav "Регистрация и заявления: нажмите один. Результаты тестов: два. Жалобы и апелляции: три. Другие вопросы: ноль."

# --- surge mode (exam periods, D21): announcement after the greeting, self-service ---------
say uz uz/surge-announcement.wav "Hozir imtihon davri, qo'ng'iroqlar juda ko'p. Kutish vaqti odatdagidan uzoqroq bo'lishi mumkin."
say ru ru/surge-announcement.wav "Сейчас период экзаменов, звонков очень много. Ожидание может быть дольше обычного."
say uz dtm/uz/surge-announcement.wav "Hozir test davri, qo'ng'iroqlar juda ko'p. Test natijalari qayerda e'lon qilinishini bilish uchun mavzu menyusida yettini bosing."
say ru dtm/ru/surge-announcement.wav "Сейчас период тестирования, звонков очень много. Чтобы узнать, где публикуются результаты тестов, в меню тем нажмите семь."
# The short surge greeting (surge-greeting, [tenant.surge] greeting = true): a few seconds,
# the information most callers want, and its key at once.
say uz uz/surge-greeting.wav "Hozir imtihon davri. Ma'lumot uchun yettini bosing."
say ru ru/surge-greeting.wav "Сейчас период экзаменов. Для справки нажмите семь."
say uz dtm/uz/surge-greeting.wav "Natijalar markaz saytida. Eshitish uchun yettini bosing."
say ru dtm/ru/surge-greeting.wav "Результаты на сайте центра. Подробнее: нажмите семь."
say uz dtm/uz/results-where.wav "Test natijalari markaz saytida, shaxsiy kabinetingizda e'lon qilinadi. Rahmat."
say ru dtm/ru/results-where.wav "Результаты тестов публикуются на сайте центра, в вашем личном кабинете. Спасибо."

# --- surge callbacks: the in-queue offer, said as "<callback-offer-intro> <press-K>" where K is
# the tenant's [tenant.surge.callback] digit (so the caller hears the key that works), and
# the confirmation ---------------------------------------------------------------------------
say uz uz/callback-offer-intro.wav "Kutmasdan, navbatingizni saqlab qolib, operator sizga qayta qo'ng'iroq qilishini xohlasangiz,"
say ru ru/callback-offer-intro.wav "Если вы хотите не ждать на линии, а получить обратный звонок с сохранением очереди,"
# "press K" for every key a menu accepts (0-9, * and #): Uzbek "<K>ni bosing", Russian
# "нажмите <K>".
uz_keys=(nolni birni ikkini uchni "to'rtni" beshni oltini yettini sakkizni "to'qqizni")
ru_keys=(ноль один два три четыре пять шесть семь восемь девять)
for k in $(seq 0 9); do
    say uz "uz/press-$k.wav" "${uz_keys[$k]} bosing."
    say ru "ru/press-$k.wav" "нажмите ${ru_keys[$k]}."
done
say uz uz/press-star.wav "yulduzchani bosing."
say ru ru/press-star.wav "нажмите звёздочку."
say uz uz/press-hash.wav "panjarani bosing."
say ru ru/press-hash.wav "нажмите решётку."
say uz uz/callback-booked.wav "Rahmat, sizga qayta qo'ng'iroq qilamiz. Xayr."
say ru ru/callback-booked.wav "Спасибо, мы вам перезвоним."

# --- the results-day door offer ([tenant.surge.door]): "<callback-offer-intro> <press-K>" for
# a callback today, or "<callback-offer-morning> <number-S> <callback-offer-morning-and>
# <number-E> <press-K>" for the next morning's window (S and E its hours), then
# "<sms-offer> <press-M>"; "sms-sent" when the SMS key was pressed ---------------------------
say uz uz/callback-offer-morning.wav "Ertaga ertalab qayta qo'ng'iroq olishni xohlasangiz, soat"
say ru ru/callback-offer-morning.wav "Если вы хотите, чтобы вам перезвонили завтра утром, между часами"
say uz uz/callback-offer-morning-and.wav "dan"
say ru ru/callback-offer-morning-and.wav "и"
say uz uz/sms-offer.wav "Ma'lumotni SMS orqali olish uchun"
say ru ru/sms-offer.wav "Чтобы получить информацию по SMS,"
say uz uz/sms-sent.wav "Rahmat, ma'lumot SMS bilan keladi."
say ru ru/sms-sent.wav "Спасибо, информация придёт по SMS."

# --- hold music: a soft repeating chord pattern, 8 seconds --------------------------------
tmpdir=$(mktemp -d)
sox -n -r 8000 -c 1 -b 16 "$tmpdir/a.wav" synth 1 sine 392 sine 494 remix - fade q 0.1 1 0.2 gain -18
sox -n -r 8000 -c 1 -b 16 "$tmpdir/b.wav" synth 1 sine 440 sine 523 remix - fade q 0.1 1 0.2 gain -18
sox -n -r 8000 -c 1 -b 16 "$tmpdir/c.wav" synth 1 sine 349 sine 440 remix - fade q 0.1 1 0.2 gain -18
sox -n -r 8000 -c 1 -b 16 "$tmpdir/d.wav" synth 1 sine 330 sine 392 remix - fade q 0.1 1 0.2 gain -18
sox "$tmpdir/a.wav" "$tmpdir/b.wav" "$tmpdir/c.wav" "$tmpdir/d.wav" \
    "$tmpdir/a.wav" "$tmpdir/c.wav" "$tmpdir/b.wav" "$tmpdir/d.wav" hold-music.wav
rm -rf "$tmpdir"
echo "prompts regenerated in $(pwd)"
