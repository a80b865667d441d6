//! QA in tests: a small scorecard for both test tenants, an answered call, and the ids a
//! QA page shows.

use super::desk::with_desk;
use super::{wait_until, Navbat, TestConfig, DTM_DID, EVENT_DEADLINE};

/// The test scorecard: greeting (10), accuracy (30), legal (30, critical); marks 0-5.
pub const SCORECARD: &str = r#"
[tenant.qa]
sample_per_operator_week = 3
criteria = [
    { id = "greeting", weight = 10, title = { uz = "Salomlashish", ru = "Приветствие" }, description = { uz = "Salomlashdi", ru = "Поздоровался" } },
    { id = "accuracy", weight = 30, title = { uz = "To'g'rilik", ru = "Точность" }, description = { uz = "To'g'ri javob", ru = "Верный ответ" } },
    { id = "legal", weight = 30, critical = true, title = { uz = "Huquqiy to'g'rilik", ru = "Юридическая верность" }, description = { uz = "Qonunga mos", ru = "По закону" } },
]
"#;

/// [`with_desk`] with the scorecard on both tenants (dtm's in its own tables; support's
/// after the accounts, where `[tenant.qa]` still belongs to the last `[[tenant]]`).
pub fn with_qa(config: TestConfig) -> TestConfig {
    with_desk(config.tenant_extra(SCORECARD), "").extra_toml(SCORECARD)
}

/// Makes one dtm call that operator 1001 answers (3 s of talk, recorded); returns its store
/// name once its record is in the database.
pub fn answered_call(nav: &Navbat) -> String {
    let phone = nav.operator_phone("1001", "operator_answer.xml", 1, &[]);
    nav.wait_operator("1001", "available");
    nav.caller("qa-caller", "caller_ivr_talk.xml", DTM_DID, 3_000)
        .wait_success();
    drop(phone);
    let ev = nav.wait_for_event("call_finished", EVENT_DEADLINE, |e| e["tenant"] == "dtm");
    let call = ev["call"].as_str().unwrap().to_owned();
    wait_until("the answered call in the store", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{call}/history"));
        (r.status == 200).then(|| r.json()["call"].as_str().unwrap().to_owned())
    })
}

/// The evaluation ids a QA page shows, in page order.
pub fn evaluation_ids(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("class=\"qa-evaluation\" id=\"") {
        rest = &rest[at + "class=\"qa-evaluation\" id=\"".len()..];
        out.push(rest.split('"').next().unwrap().to_owned());
    }
    out
}

/// The store name of a page's redirect target's last segment (`/qa/calibrations/{id}`).
pub fn location(resp: &super::HttpResponse) -> String {
    resp.headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no Location: {resp:?}"))
}
