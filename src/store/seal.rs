//! The callers' personal data a journal record carries, sealed on its way to disk and opened
//! on its way back into memory ([`crate::pii`], D18).
//!
//! In memory the SMS outbox, the callback book and the requests' book keep numbers, names and
//! addresses plain (an SMS must be sent, a callback dialled, an answer addressed); what the
//! journal and the database get is sealed by [`seal_record`] in [`super::Store::record`], and
//! the rows and records read back at start-up are opened by [`open_record`] / [`open_head`] /
//! [`open_message`]. Sealed per record:
//! * a queued SMS's number (`sms_messages.to_number`; its text holds neither number nor name:
//!   the templates take the tenant's name, a self-service label and a time window);
//! * a booked callback's number (`callback_requests.caller_number`);
//! * a request's requester (name, e-mail, phone, organisation, STIR, inside `requests.head`),
//!   the text and the address of its messages (`request_messages.body`, `to_addr`); a missed
//!   call's intake key `phone:<tenant>:<digits>:<day>` keeps the number's lookup hash instead
//!   of its digits ([`hash_intake_key`]);
//! * a disposition's caller name, organisation and STIR (C8).
//!
//! The number of an SMS or a callback is also found by its lookup hash: the journal entry
//! carries it (`caller_lookup`, as a call's arrival does) and the rows keep it
//! (`sms_messages.to_lookup`, `callback_requests.caller_lookup`, schema 11).

use super::outbox::StoreRecord;
use super::record::JournalEntry;
use crate::callback::CallbackRecord;
use crate::pii::{field, is_sealed, Pii, PiiError};
use crate::request_model::{Head, Message, RequestStep};
use crate::sms::SmsRecord;

/// Seals `value` unless it already is; whether it changed.
fn seal_text(value: &mut String, f: &'static str, pii: &Pii) -> bool {
    if is_sealed(value) {
        return false;
    }
    *value = pii.seal(f, value);
    true
}

fn seal_opt(value: &mut Option<String>, f: &'static str, pii: &Pii) -> bool {
    value.as_mut().is_some_and(|v| seal_text(v, f, pii))
}

/// Opens a sealed value in place; a plain one is an error ([`PiiError::Plain`]).
fn open_text(value: &mut String, f: &'static str, pii: &Pii) -> Result<(), PiiError> {
    *value = pii.open(f, value)?;
    Ok(())
}

fn open_opt(value: &mut Option<String>, f: &'static str, pii: &Pii) -> Result<(), PiiError> {
    match value {
        Some(v) => open_text(v, f, pii),
        None => Ok(()),
    }
}

/// The number of a queued SMS or a booked callback, as the record holds it (plain or sealed),
/// with its field.
pub fn record_number(record: &StoreRecord) -> Option<(&str, &'static str)> {
    match record {
        StoreRecord::Sms(SmsRecord::Queued { message }) => Some((&message.to, field::SMS_TO)),
        StoreRecord::Callback(CallbackRecord::Requested(request)) => {
            Some((&request.number, field::CALLBACK_NUMBER))
        }
        _ => None,
    }
}

/// The intake key of a missed call with the number's lookup hash in place of its digits:
/// `phone:<tenant>:<digits>:<day>` -> `phone:<tenant>:<hash>:<day>`; `None` for any other
/// key, or one already hashed.
pub fn hash_intake_key(key: &str, pii: &Pii) -> Option<String> {
    let rest = key.strip_prefix("phone:")?;
    let mut parts = rest.rsplitn(3, ':');
    let day = parts.next()?;
    let number = parts.next()?;
    let tenant = parts.next()?;
    // A hash is 32 hex digits; a number is digits and shorter (E.164: at most 15).
    if number.is_empty() || number.len() >= 32 || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(phone_key(tenant, &pii.lookup(number), day))
}

/// The intake key of a missed call from the number whose lookup hash is `lookup`.
pub fn phone_key(tenant: &str, lookup: &str, day: &str) -> String {
    format!("phone:{tenant}:{lookup}:{day}")
}

/// A request's head with its requester sealed and its intake key hashed; whether it changed.
pub fn seal_head(head: &mut Head, pii: &Pii) -> bool {
    let r = &mut head.requester;
    let mut changed = seal_opt(&mut r.name, field::REQUESTER_NAME, pii);
    changed |= seal_opt(&mut r.email, field::REQUESTER_EMAIL, pii);
    changed |= seal_opt(&mut r.phone, field::REQUESTER_PHONE, pii);
    changed |= seal_opt(&mut r.organisation, field::REQUESTER_ORGANISATION, pii);
    changed |= seal_opt(&mut r.stir, field::REQUESTER_STIR, pii);
    if let Some(key) = head
        .intake_key
        .as_deref()
        .and_then(|k| hash_intake_key(k, pii))
    {
        head.intake_key = Some(key);
        changed = true;
    }
    changed
}

/// A head read back (database or journal) with its requester opened.
pub fn open_head(head: &mut Head, pii: &Pii) -> Result<(), PiiError> {
    let r = &mut head.requester;
    open_opt(&mut r.name, field::REQUESTER_NAME, pii)?;
    open_opt(&mut r.email, field::REQUESTER_EMAIL, pii)?;
    open_opt(&mut r.phone, field::REQUESTER_PHONE, pii)?;
    open_opt(&mut r.organisation, field::REQUESTER_ORGANISATION, pii)?;
    open_opt(&mut r.stir, field::REQUESTER_STIR, pii)
}

/// A request message with its text and address sealed; whether it changed.
pub fn seal_message(message: &mut Message, pii: &Pii) -> bool {
    let changed = seal_text(&mut message.body, field::MESSAGE_BODY, pii);
    seal_opt(&mut message.to, field::MESSAGE_TO, pii) | changed
}

/// A request message read back with its text and address opened.
pub fn open_message(message: &mut Message, pii: &Pii) -> Result<(), PiiError> {
    open_text(&mut message.body, field::MESSAGE_BODY, pii)?;
    open_opt(&mut message.to, field::MESSAGE_TO, pii)
}

fn step_message(step: &mut RequestStep) -> Option<&mut Message> {
    use crate::request_model::Change;
    match &mut step.change {
        Change::Opened { message } => message.as_mut(),
        Change::Message { message } => Some(message),
        _ => None,
    }
}

/// Seals the callers' personal data a record carries in plain text; whether anything changed.
/// A value already sealed stays as it is.
pub fn seal_record(record: &mut StoreRecord, pii: &Pii) -> bool {
    match record {
        StoreRecord::Sms(SmsRecord::Queued { message }) => {
            seal_text(&mut message.to, field::SMS_TO, pii)
        }
        StoreRecord::Callback(CallbackRecord::Requested(request)) => {
            seal_text(&mut request.number, field::CALLBACK_NUMBER, pii)
        }
        StoreRecord::Disposition(d) => {
            let mut changed = seal_opt(&mut d.caller_name, field::CALLER_NAME, pii);
            changed |= seal_opt(&mut d.organisation, field::ORGANISATION, pii);
            changed |= seal_opt(&mut d.stir, field::STIR, pii);
            changed
        }
        StoreRecord::Request(step) => {
            let changed = seal_head(&mut step.head, pii);
            step_message(step).is_some_and(|m| seal_message(m, pii)) | changed
        }
        _ => false,
    }
}

/// Opens what [`seal_record`] sealed in a record read back from the journal (the work
/// recovered at start-up: unsent SMS, pending callbacks, request steps).
pub fn open_record(record: &mut StoreRecord, pii: &Pii) -> Result<(), PiiError> {
    match record {
        StoreRecord::Sms(SmsRecord::Queued { message }) => {
            open_text(&mut message.to, field::SMS_TO, pii)
        }
        StoreRecord::Callback(CallbackRecord::Requested(request)) => {
            open_text(&mut request.number, field::CALLBACK_NUMBER, pii)
        }
        StoreRecord::Disposition(d) => {
            open_opt(&mut d.caller_name, field::CALLER_NAME, pii)?;
            open_opt(&mut d.organisation, field::ORGANISATION, pii)?;
            open_opt(&mut d.stir, field::STIR, pii)
        }
        StoreRecord::Request(step) => {
            open_head(&mut step.head, pii)?;
            match step_message(step) {
                Some(m) => open_message(m, pii),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The record of a journal entry sealed, with the lookup hash of its number filled in (an
/// entry of an older navbat: the DB writer before it folds the entry, and `navbat migrate`);
/// whether the entry changed. A number that does not open is left for the database writer
/// to report.
pub fn seal_entry_record(entry: &mut JournalEntry, pii: &Pii) -> bool {
    let Some(record) = entry.record.as_mut() else {
        return false;
    };
    let mut changed = false;
    if entry.caller_lookup.is_none() {
        if let Some((number, f)) = record_number(record) {
            let plain = if is_sealed(number) {
                pii.open(f, number).ok()
            } else {
                Some(number.to_owned())
            };
            if let Some(plain) = plain {
                entry.caller_lookup = Some(pii.lookup(&plain));
                changed = true;
            }
        }
    }
    seal_record(record, pii) | changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_model::{Change, Channel, Direction, Kind, Priority, Requester, Status};

    fn pii(dir: &std::path::Path) -> Pii {
        let path = dir.join("k.key");
        crate::keyfile::Keys::generate(&path, 0).unwrap();
        Pii::load(&path).unwrap()
    }

    fn step() -> RequestStep {
        RequestStep {
            head: Head {
                id: "support-261206-0001".into(),
                tenant: "support".into(),
                channel: Channel::Phone,
                kind: Kind::Ordinary,
                priority: Priority::Normal,
                status: Status::New,
                category: None,
                topic: None,
                subject: "s".into(),
                requester: Requester {
                    name: Some("Dilnoza Rahimova".into()),
                    email: Some("dilnoza@example.uz".into()),
                    phone: Some("+998901234567".into()),
                    telegram_chat: None,
                    organisation: Some("Oila MChJ".into()),
                    stir: Some("123456789".into()),
                },
                language: "uz".into(),
                assignee: None,
                intake_key: Some("phone:support:998901234567:261206".into()),
                registered_at_ms: 1,
                first_answer_at_ms: None,
                resolved_at_ms: None,
                closed_at_ms: None,
                submitted_at_ms: None,
                pauses: Vec::new(),
                calls: Vec::new(),
                forwarded_at_ms: None,
                chancellery_ref: None,
                thread_ref: None,
                references: Vec::new(),
                messages: 1,
                breaches: Vec::new(),
                updated_at_ms: 1,
                version: 1,
            },
            change: Change::Opened {
                message: Some(Message {
                    uid: "support-261206-0001-m1".into(),
                    direction: Direction::In,
                    channel: Channel::Web,
                    author: None,
                    body: "Dilnoza, +998901234567".into(),
                    external_id: None,
                    attachments: Vec::new(),
                    to: Some("dilnoza@example.uz".into()),
                }),
            },
            actor: "customer".into(),
            at_ms: 1,
        }
    }

    #[test]
    fn a_request_step_seals_whole_and_opens_back() {
        let dir = tempfile::tempdir().unwrap();
        let pii = pii(dir.path());
        let plain = StoreRecord::Request(Box::new(step()));
        let mut record = plain.clone();
        assert!(seal_record(&mut record, &pii));
        let json = serde_json::to_string(&record).unwrap();
        for secret in ["Dilnoza", "dilnoza@", "901234567", "123456789", "Oila"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        // Sealing again changes nothing.
        assert!(!seal_record(&mut record, &pii));
        let StoreRecord::Request(sealed) = &record else {
            unreachable!()
        };
        let key = sealed.head.intake_key.clone().unwrap();
        assert_eq!(
            key,
            phone_key("support", &pii.lookup("+998901234567"), "261206")
        );
        assert_eq!(hash_intake_key(&key, &pii), None);
        open_record(&mut record, &pii).unwrap();
        let StoreRecord::Request(mut expected) = plain else {
            unreachable!()
        };
        expected.head.intake_key = Some(key);
        assert_eq!(record, StoreRecord::Request(expected));
    }

    #[test]
    fn intake_keys_other_than_a_missed_call_stay() {
        let dir = tempfile::tempdir().unwrap();
        let pii = pii(dir.path());
        assert_eq!(hash_intake_key("web:abc", &pii), None);
        assert_eq!(hash_intake_key("msg:<a@b>", &pii), None);
        assert_eq!(
            hash_intake_key("phone:a:b:998901234567:261206", &pii),
            Some(phone_key("a:b", &pii.lookup("998901234567"), "261206"))
        );
    }
}
