use super::*;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mail")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn russian_in_windows_1251() {
    let m = parse(&fixture("ru-windows-1251.eml")).unwrap();
    assert_eq!(m.message_id, "0a1b2c3d$4e5f$ru1251@example.ru");
    assert_eq!(m.subject, "Не могу войти в личный кабинет");
    assert_eq!(m.from_name.as_deref(), Some("Иван Петров"));
    assert_eq!(
        m.from_addr.as_ref().map(|a| a.expose()),
        Some("ivan.petrov@example.ru")
    );
    assert!(
        m.text.starts_with("Здравствуйте!\nНе могу войти"),
        "{:?}",
        m.text
    );
    assert!(m.text.contains("«неверный ИНН»"));
    assert!(!m.text.contains('\r'));
    // Tue, 3 Jun 2025 09:15:02 +0500
    assert_eq!(m.date_ms, Some(1_748_924_102_000));
    assert!(m.attachments.is_empty());
    assert!(!m.auto_submitted);
}

#[test]
fn russian_in_koi8_r_quoted_printable() {
    let m = parse(&fixture("ru-koi8-r.eml")).unwrap();
    assert_eq!(m.subject, "Результаты тестирования");
    assert_eq!(m.from_name.as_deref(), Some("Ольга"));
    assert_eq!(
        m.text,
        "Добрый день.\nПодскажите, когда будут результаты тестирования?\nСпасибо.\n"
    );
}

#[test]
fn uzbek_latin_in_utf8_quoted_printable() {
    let m = parse(&fixture("uz-utf8-qp.eml")).unwrap();
    assert_eq!(m.subject, "Roʻyxatdan oʻtishda xatolik");
    assert_eq!(m.from_name.as_deref(), Some("Ogʻabek Toshmatov"));
    assert!(
        m.text.contains("Men roʻyxatdan oʻta olmayapman"),
        "{:?}",
        m.text
    );
    assert!(m.text.contains("Ogʻabek"));
}

#[test]
fn pdf_attachment_with_a_cyrillic_file_name() {
    let m = parse(&fixture("pdf-attachment.eml")).unwrap();
    assert_eq!(m.text.trim(), "Ariza ilova qilindi.");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!(a.file_name, "заявление.pdf");
    assert_eq!(a.media_type, "application/pdf");
    assert_eq!(a.bytes, fixture("ariza.pdf"));
    assert!(a.bytes.starts_with(b"%PDF-1.4"));
}

#[test]
fn html_only_becomes_plain_text_without_markup_or_scripts() {
    let m = parse(&fixture("html-only.eml")).unwrap();
    assert!(m.text.contains("Salom"), "{:?}", m.text);
    assert!(m.text.contains("& rahmat!"), "{:?}", m.text);
    assert!(m.text.contains("Natijalar<qachon>?"), "{:?}", m.text);
    assert!(m.text.contains("Nodira"));
    for markup in ["<p>", "<br>", "alert", "color: red", "&amp;", "<script"] {
        assert!(!m.text.contains(markup), "{markup} left in {:?}", m.text);
    }
    assert!(m.attachments.is_empty());
}

#[test]
fn no_message_id_gets_a_stable_hash_of_the_bytes() {
    let raw = fixture("no-message-id.eml");
    let m = parse(&raw).unwrap();
    assert!(m.message_id.starts_with("sha256:"), "{}", m.message_id);
    assert_eq!(m.message_id.len(), "sha256:".len() + 64);
    assert_eq!(parse(&raw).unwrap().message_id, m.message_id);
    let mut other = raw.clone();
    other.extend_from_slice(b"more\r\n");
    assert_ne!(parse(&other).unwrap().message_id, m.message_id);
    assert_eq!(m.from_addr.unwrap().expose(), "noid@example.uz");
    assert_eq!(m.from_name, None);
}

#[test]
fn threading_headers_without_angle_brackets() {
    let m = parse(&fixture("reply-thread.eml")).unwrap();
    assert_eq!(m.message_id, "reply-2@example.ru");
    assert_eq!(
        m.in_reply_to.as_deref(),
        Some("req-42.answer-1@navbat.example")
    );
    assert_eq!(
        m.references,
        vec![
            "0a1b2c3d$4e5f$ru1251@example.ru".to_string(),
            "req-42.answer-1@navbat.example".to_string()
        ]
    );
    assert_eq!(
        m.thread_ids(),
        vec![
            "req-42.answer-1@navbat.example",
            "0a1b2c3d$4e5f$ru1251@example.ru"
        ]
    );
}

#[test]
fn automatic_replies_are_flagged() {
    let m = parse(&fixture("auto-reply.eml")).unwrap();
    assert!(m.auto_submitted);
    let bulk = b"From: news@example.uz\r\nSubject: News\r\nPrecedence: bulk\r\n\r\nHi\r\n";
    assert!(parse(bulk).unwrap().auto_submitted);
    let bounce = b"From: MAILER-DAEMON@example.uz\r\nSubject: Undelivered\r\n\r\nx\r\n";
    assert!(parse(bounce).unwrap().auto_submitted);
    let human = b"From: a@example.uz\r\nSubject: Hi\r\nAuto-Submitted: no\r\n\r\nx\r\n";
    assert!(!parse(human).unwrap().auto_submitted);
}

#[test]
fn reply_to_is_where_answers_go() {
    let raw = b"From: form@navbat.example\r\nReply-To: Ali <ali@example.uz>\r\nSubject: Form\r\n\r\nx\r\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.answer_to().unwrap().expose(), "ali@example.uz");
    let m = parse(&fixture("uz-utf8-qp.eml")).unwrap();
    assert_eq!(m.reply_to, None);
    assert_eq!(m.answer_to().unwrap().expose(), "ogabek@example.uz");
}

#[test]
fn debug_masks_the_sender_and_prints_no_text() {
    let m = parse(&fixture("ru-windows-1251.eml")).unwrap();
    let shown = format!("{m:?}");
    assert!(shown.contains("i***@example.ru"), "{shown}");
    for secret in [
        "ivan.petrov",
        "Петров",
        "123456789",
        "Здравствуйте",
        "кабинет",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let m = parse(&fixture("pdf-attachment.eml")).unwrap();
    let shown = format!("{m:?}");
    assert!(shown.contains("application/pdf"), "{shown}");
    assert!(!shown.contains("заявление"), "{shown}");
}

#[test]
fn garbage_is_not_mail_and_is_kept_as_unreadable() {
    assert!(parse(b"").is_err());
    assert!(parse(b" \r\n ").is_err());
    let junk: &[u8] = b"\x00\x01\x02 binary \xff\xfe no headers here";
    assert!(matches!(parse(junk), Err(MailError::Unparseable { .. })));
    let kept = Inbound::parse_or_unreadable(junk);
    assert_eq!(kept.text, UNREADABLE_TEXT);
    assert_eq!(kept.message_id, raw_message_id(junk));
    assert_eq!(kept.attachments[0].file_name, "message.eml");
    assert_eq!(kept.attachments[0].bytes, junk);

    let headers_only = b"X-Junk: 1\r\nSubject: Yordam kerak\r\n";
    let kept = Inbound::unreadable(headers_only);
    assert_eq!(kept.subject, "Yordam kerak");
}

#[test]
fn control_characters_and_paths_are_cleaned() {
    let raw = b"From: a@example.uz\r\nSubject: one\r\n two\x07\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nnul\x00here\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nx\r\n--b--\r\n";
    let m = parse(raw).unwrap();
    assert_eq!(m.subject, "one two");
    assert_eq!(m.text.trim(), "nulhere");
    assert_eq!(m.attachments[0].file_name, "passwd");
}

fn fixtures() -> Vec<Vec<u8>> {
    [
        "ru-windows-1251.eml",
        "ru-koi8-r.eml",
        "uz-utf8-qp.eml",
        "pdf-attachment.eml",
        "html-only.eml",
        "reply-thread.eml",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect()
}

proptest! {
    /// Bad input is never a panic: any bytes parse or fail cleanly, and a kept message
    /// always has an id.
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let m = Inbound::parse_or_unreadable(&raw);
        prop_assert!(!m.message_id.is_empty());
        prop_assert!(!m.text.contains('\0'));
    }

    /// Real messages cut short or with bytes overwritten still parse without a panic.
    #[test]
    fn mangled_real_mail_never_panics(
        which in 0usize..6,
        cut in 0usize..1000,
        edits in proptest::collection::vec((0usize..1000, any::<u8>()), 0..16),
    ) {
        let mut raw = fixtures()[which].clone();
        raw.truncate(cut.min(raw.len()));
        for (at, byte) in edits {
            if !raw.is_empty() {
                let i = at % raw.len();
                raw[i] = byte;
            }
        }
        let m = Inbound::parse_or_unreadable(&raw);
        prop_assert!(!m.message_id.is_empty());
        prop_assert!(!m.subject.contains('\n'));
    }
}
