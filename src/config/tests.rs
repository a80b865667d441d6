//! Parser and checker tests, all from strings.

use super::*;

/// A small valid configuration; tests append to it or replace parts of it.
const BASE: &str = r#"
[sip]
udp = "127.0.0.1:5060"

[[tenant]]
id = "dtm"
name = { uz = "Davlat test markazi", ru = "Центр тестирования" }
dids = ["712351914"]
timezone = "Asia/Tashkent"
hours = "24/7"

[tenant.ivr]
default_language = "uz"
languages = [
    { digit = "1", language = "uz", queue = "dtm-uz" },
    { digit = "2", language = "ru", queue = "dtm-ru" },
]
topics = [
    { digit = "1", topic = "results", label = { uz = "Natijalar", ru = "Результаты" } },
    { digit = "0", topic = "other", label = { uz = "Boshqa", ru = "Другое" } },
]
default_topic = "other"

[[queue]]
id = "dtm-uz"
tenant = "dtm"
language = "uz"

[[queue]]
id = "dtm-ru"
tenant = "dtm"
language = "ru"

[[operator]]
ext = "1001"
name = "Operator 1001"
ha1 = "5917c31d3ac0492b9f830106472ca074"
languages = ["uz", "ru"]
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, "test.toml")
}

fn errors(text: &str) -> ConfigErrors {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors,
    }
}

/// Asserts an error at exactly `field` with a non-empty fix; returns it.
#[track_caller]
fn expect_error(errors: &ConfigErrors, field: &str) -> ConfigError {
    let Some(error) = errors.at(field).next() else {
        panic!("no error at {field}; got:\n{errors}");
    };
    assert!(!error.fix.trim().is_empty(), "empty fix: {error}");
    assert!(!error.problem.trim().is_empty(), "empty problem: {error}");
    assert_eq!(error.file, "test.toml");
    error.clone()
}

#[test]
fn base_is_valid() {
    let config = parse(BASE).unwrap();
    assert_eq!(config.tenants.len(), 1);
    assert_eq!(config.queues.len(), 2);
    assert_eq!(config.sip.realm, "navbat");
    assert_eq!(config.limits.channels, 300);
    assert_eq!(config.queues[0].strategy, StrategyName::LongestIdle);
    assert_eq!(config.queues[0].normal, config.queues[0].surge);
}

#[test]
fn embedded_default_is_valid() {
    let config = Config::embedded_default();
    assert_eq!(config.tenants.len(), 2);
    assert_eq!(config.operators.len(), 12);
    assert_eq!(config.sip.udp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(config.sip.tcp, Some("127.0.0.1:5060".parse().unwrap()));
    assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.tenant_by_did("712351914").unwrap().id, "dtm");
    assert_eq!(config.tenant_by_did("+712038872").unwrap().id, "support");
    assert!(config.tenant_by_did("000").is_none());
    let support = config.tenant("support").unwrap();
    assert!(support.ivr.topics.is_empty());
    let reserve: Vec<&str> = config
        .operators
        .iter()
        .filter(|operator| operator.reserve)
        .map(|operator| operator.ext.as_str())
        .collect();
    assert_eq!(reserve, ["1901", "1902"]);
    let dtm_uz = config.queue("dtm-uz").unwrap();
    assert_eq!(dtm_uz.surge.max_wait, Duration::from_secs(90));
    assert_eq!(dtm_uz.surge.reserve_after, Some(Duration::ZERO));
    assert_eq!(dtm_uz.surge.ring_timeout, dtm_uz.normal.ring_timeout);
}

#[test]
fn embedded_default_demo_ha1_values_match_demo_passwords() {
    let config = Config::embedded_default();
    for operator in &config.operators {
        let expected = digest_ha1(&operator.ext, "navbat", &format!("demo{}", operator.ext));
        assert_eq!(operator.ha1, expected, "operator {}", operator.ext);
        let sha256 =
            super::digest_ha1_sha256(&operator.ext, "navbat", &format!("demo{}", operator.ext));
        assert_eq!(
            operator.ha1_sha256.as_deref(),
            Some(sha256.as_str()),
            "operator {}",
            operator.ext
        );
    }
    assert_eq!(config.uses_demo_credentials().len(), config.operators.len());
}

#[test]
fn a_malformed_sha256_ha1_names_its_field() {
    let toml =
        crate::config::EMBEDDED_DEFAULT_TOML.replacen("ha1_sha256 = \"", "ha1_sha256 = \"zz", 1);
    let errors = Config::from_toml_str(&toml, "test.toml").unwrap_err();
    expect_error(&errors, "operator[0].ha1_sha256");
}

#[test]
fn sha256_for_some_operators_only_is_refused() {
    let toml =
        crate::config::EMBEDDED_DEFAULT_TOML.replacen("ha1_sha256 = \"", "# ha1_sha256 = \"", 1);
    let errors = Config::from_toml_str(&toml, "test.toml").unwrap_err();
    expect_error(&errors, "operator[0].ha1_sha256");
}

#[test]
fn digest_ha1_matches_rfc_2617_definition() {
    // md5("1001:navbat:demo1001"), computed independently with md5sum.
    assert_eq!(
        digest_ha1("1001", "navbat", "demo1001"),
        "5917c31d3ac0492b9f830106472ca074"
    );
}

#[test]
fn non_demo_ha1_is_not_reported_as_demo() {
    let text = BASE.replace(
        "5917c31d3ac0492b9f830106472ca074",
        &digest_ha1("1001", "navbat", "a real secret"),
    );
    assert!(parse(&text).unwrap().uses_demo_credentials().is_empty());
}

#[test]
fn error_display_names_file_field_and_fix() {
    let errors = errors(
        &BASE
            .replace("channels-placeholder", "")
            .replace("[sip]", "[sip]\nnonce_ttl_secs = 0"),
    );
    let line = errors.to_string();
    assert!(
        line.starts_with("test.toml: sip.nonce_ttl_secs: "),
        "{line}"
    );
    assert!(line.contains("; fix: "), "{line}");
}

#[test]
fn all_errors_are_collected_one_per_line() {
    let text = BASE
        .replace("udp = \"127.0.0.1:5060\"", "udp = \"nowhere\"")
        .replace(
            "language = \"ru\"\n\n[[operator]]",
            "language = \"ru\"\nstrategy = \"random\"\n\n[[operator]]",
        )
        .replace(
            "ha1 = \"5917c31d3ac0492b9f830106472ca074\"",
            "ha1 = \"secret\"",
        );
    let errors = errors(&text);
    expect_error(&errors, "sip.udp");
    expect_error(&errors, "queue[1].strategy");
    expect_error(&errors, "operator[0].ha1");
    assert_eq!(errors.to_string().lines().count(), errors.0.len());
}

#[test]
fn syntax_error_has_line_and_column() {
    let errors = errors("[sip]\nudp = \"127.0.0.1:5060\nrealm = \"x\"\n");
    let error = &errors.0[0];
    assert!(error.field.starts_with("line 2, column"), "{error}");
    assert!(error.problem.contains("TOML syntax error"), "{error}");
    assert!(!error.fix.is_empty());
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let text = BASE.replace("hours = \"24/7\"", "hours = \"24/7\"\ncolour = \"red\"");
    let errors = errors(&text);
    let error = expect_error(&errors, "tenant[0].colour");
    assert!(error.problem.contains("unknown field"), "{error}");
    assert!(
        error.fix.contains("timezone"),
        "the fix lists valid keys: {error}"
    );
}

#[test]
fn unknown_keys_in_several_entries_are_all_reported() {
    let text = BASE
        .replace("[sip]\n", "[sip]\nport = 5060\n")
        .replace(
            "tenant = \"dtm\"\nlanguage = \"uz\"",
            "tenant = \"dtm\"\nlanguage = \"uz\"\nstratgy = \"ring-all\"",
        )
        .replace(
            "default_topic = \"other\"",
            "default_topic = \"other\"\ntimeout = 5",
        );
    let errors = errors(&text);
    expect_error(&errors, "sip.port");
    expect_error(&errors, "queue[0].stratgy");
    expect_error(&errors, "tenant[0].ivr.timeout");
}

#[test]
fn unknown_section_is_reported() {
    let errors = errors(&format!("{BASE}\n[databse]\nurl = \"x\"\n"));
    let error = expect_error(&errors, "databse");
    assert!(error.fix.contains("operators_defaults"));
}

#[test]
fn wrong_value_type_is_reported_at_the_key() {
    let errors = errors(&BASE.replace("[sip]\n", "[limits]\nchannels = \"many\"\n\n[sip]\n"));
    expect_error(&errors, "limits.channels");
}

#[test]
fn bad_socket_addresses_are_reported() {
    let text = BASE.replace(
        "udp = \"127.0.0.1:5060\"",
        "udp = \"127.0.0.1\"\ntcp = \"localhost:5060\"\n[http]\nlisten = \"8080\"",
    );
    let errors = errors(&text);
    expect_error(&errors, "sip.udp");
    expect_error(&errors, "sip.tcp");
    expect_error(&errors, "http.listen");
}

#[test]
fn no_sip_listener_is_reported() {
    let errors = errors(&BASE.replace("udp = \"127.0.0.1:5060\"", "realm = \"navbat\""));
    let error = expect_error(&errors, "sip");
    assert!(error.fix.contains("udp"));
}

#[test]
fn missing_sip_section_defaults_to_loopback() {
    let config = parse(&BASE.replace("[sip]\nudp = \"127.0.0.1:5060\"\n", "")).unwrap();
    assert!(config.sip.is_loopback_only());
    assert!(config.sip.udp.is_some() && config.sip.tcp.is_some());
}

#[test]
fn unspecified_listen_address_needs_public_ip() {
    let text = BASE
        .replace("udp = \"127.0.0.1:5060\"", "udp = \"0.0.0.0:5060\"")
        .replace(
            "5917c31d3ac0492b9f830106472ca074",
            &digest_ha1("1001", "navbat", "s3cret"),
        );
    let errors = errors(&text);
    expect_error(&errors, "sip.public_ip");
    let fixed = text.replace("[sip]\n", "[sip]\npublic_ip = \"192.0.2.10\"\n");
    let config = parse(&fixed).unwrap();
    assert_eq!(
        config.sip.advertised_ip(),
        "192.0.2.10".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn register_expiry_bounds_are_checked() {
    let text = BASE.replace(
        "[sip]\n",
        "[sip]\nregister_min_expires_secs = 600\nregister_max_expires_secs = 60\n",
    );
    expect_error(&errors(&text), "sip.register_max_expires_secs");
}

#[test]
fn empty_or_inverted_port_range_is_reported() {
    for (min, max) in [(20000, 20000), (21000, 20000)] {
        let text = format!("{BASE}\n[media]\nrtp_port_min = {min}\nrtp_port_max = {max}\n");
        expect_error(&errors(&text), "media.rtp_port_max");
    }
}

#[test]
fn media_directories_and_announcements_have_defaults_and_checks() {
    let config = parse(BASE).unwrap();
    assert_eq!(
        config.media.prompts_dir,
        std::path::Path::new("config/prompts")
    );
    assert_eq!(
        config.media.recordings_dir,
        std::path::Path::new("data/recordings")
    );
    assert_eq!(config.media.announce_every, Some(Duration::from_secs(30)));
    assert_eq!(config.media.average_handle, Duration::from_secs(180));
    let text = format!(
        "{BASE}\n[media]\nprompts_dir = \"/srv/p\"\nrecordings_dir = \"/srv/r\"\nannounce_every_secs = 0\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.media.prompts_dir, std::path::Path::new("/srv/p"));
    assert_eq!(config.media.announce_every, None);
    let text = format!("{BASE}\n[media]\nrecordings_dir = \" \"\naverage_handle_secs = 0\n");
    let errors = errors(&text);
    expect_error(&errors, "media.recordings_dir");
    expect_error(&errors, "media.average_handle_secs");
}

#[test]
fn duplicate_ids_are_reported() {
    let text = format!(
        "{BASE}\n[[queue]]\nid = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"\n\n\
         [[operator]]\next = \"1001\"\nname = \"Again\"\nha1 = \"5917c31d3ac0492b9f830106472ca074\"\nlanguages = [\"uz\"]\n"
    );
    let errors = errors(&text);
    expect_error(&errors, "queue[2].id");
    expect_error(&errors, "operator[1].ext");

    let tenant_twice = format!("{BASE}\n{}", tenant_block("dtm", "998900000"));
    let errors = errors_of(&tenant_twice);
    let error = expect_error(&errors, "tenant[1].id");
    assert!(error.problem.contains("tenant[0]"));
}

fn errors_of(text: &str) -> ConfigErrors {
    errors(text)
}

/// A second tenant with its own queue.
fn tenant_block(id: &str, did: &str) -> String {
    format!(
        r#"
[[tenant]]
id = "{id}"
name = {{ uz = "Yordam", ru = "Поддержка" }}
dids = ["{did}"]
timezone = "Asia/Tashkent"
hours = [{{ days = ["mon", "fri"], open = "08:00", close = "20:00" }}]

[tenant.ivr]
languages = [{{ digit = "1", language = "ru", queue = "{id}-ru" }}]

[[queue]]
id = "{id}-ru"
tenant = "{id}"
language = "ru"
"#
    )
}

#[test]
fn second_tenant_block_is_valid() {
    let config = parse(&format!("{BASE}\n{}", tenant_block("support", "712038872"))).unwrap();
    let support = config.tenant("support").unwrap();
    // One language: the menu defaults to it.
    assert_eq!(support.ivr.default_language.as_deref(), Some("ru"));
}

#[test]
fn duplicate_did_across_tenants_is_reported() {
    let errors = errors(&format!(
        "{BASE}\n{}",
        tenant_block("support", "+712351914")
    ));
    let error = expect_error(&errors, "tenant.support.dids[0]");
    assert!(error.problem.contains("tenant.dtm"), "{error}");
}

#[test]
fn did_must_be_digits() {
    let text = BASE.replace(
        "dids = [\"712351914\"]",
        "dids = [\"71-235\", \"+998712351914\", \"\"]",
    );
    let errors = errors(&text);
    expect_error(&errors, "tenant.dtm.dids[0]");
    expect_error(&errors, "tenant.dtm.dids[2]");
    assert!(!errors.has("tenant.dtm.dids[1]"));
}

#[test]
fn unknown_timezone_is_reported() {
    let text = BASE.replace("Asia/Tashkent", "Asia/Atlantis");
    let error = expect_error(&errors(&text), "tenant.dtm.timezone");
    assert!(error.fix.contains("Asia/Tashkent"));
}

#[test]
fn fixed_offset_timezone_is_accepted() {
    let text = BASE.replace("Asia/Tashkent", "+05:00");
    let config = parse(&text).unwrap();
    let tenant = &config.tenants[0];
    assert_eq!(
        tenant
            .timezone
            .to_datetime("2026-01-01T00:00:00Z".parse().unwrap())
            .hour(),
        5
    );
}

#[test]
fn bad_hours_are_reported() {
    let text = BASE.replace(
        "hours = \"24/7\"",
        "hours = [\n  { days = [\"mon\", \"funday\"], open = \"20:00\", close = \"08:00\" },\n  \
         { days = [], open = \"8am\", close = \"25:00\" },\n]",
    );
    let errors = errors(&text);
    expect_error(&errors, "tenant.dtm.hours[0].days[1]");
    expect_error(&errors, "tenant.dtm.hours[0].close");
    expect_error(&errors, "tenant.dtm.hours[1].days");
    expect_error(&errors, "tenant.dtm.hours[1].open");
    expect_error(&errors, "tenant.dtm.hours[1].close");

    let errors = errors_of(&BASE.replace("hours = \"24/7\"", "hours = \"always\""));
    expect_error(&errors, "tenant.dtm.hours");
    let errors = errors_of(&BASE.replace(
        "hours = \"24/7\"",
        "hours = [{ days = [\"mon\"], open = \"08:00\", close = \"20:00\", lunch = \"13:00\" }]",
    ));
    expect_error(&errors, "tenant.dtm.hours[0]");
}

#[test]
fn bad_dates_are_reported() {
    let text = BASE.replace(
        "hours = \"24/7\"",
        "hours = \"24/7\"\nholidays = [\"2026-01-01\", \"2026-02-30\", \"1 May\"]",
    );
    let errors = errors(&text);
    assert!(!errors.has("tenant.dtm.holidays[0]"));
    expect_error(&errors, "tenant.dtm.holidays[1]");
    expect_error(&errors, "tenant.dtm.holidays[2]");
}

#[test]
fn queue_with_unknown_tenant_is_reported() {
    let text = BASE.replace(
        "id = \"dtm-ru\"\ntenant = \"dtm\"",
        "id = \"dtm-ru\"\ntenant = \"dmt\"",
    );
    let errors = errors(&text);
    let error = expect_error(&errors, "queue[1].tenant");
    assert!(error.fix.contains("dtm"));
    // The IVR entry pointing at that queue is reported too: it belongs to another tenant now.
    expect_error(&errors, "tenant.dtm.ivr.languages[1].queue");
}

#[test]
fn ivr_entry_with_unknown_queue_is_reported() {
    let text = BASE.replace("queue = \"dtm-ru\"", "queue = \"dtm-russian\"");
    let error = expect_error(&errors(&text), "tenant.dtm.ivr.languages[1].queue");
    assert!(error.fix.contains("dtm-russian"));
}

#[test]
fn ivr_entry_with_queue_of_other_tenant_is_reported() {
    let text = format!("{BASE}\n{}", tenant_block("support", "712038872"))
        .replace("queue = \"dtm-ru\"", "queue = \"support-ru\"");
    let error = expect_error(&errors(&text), "tenant.dtm.ivr.languages[1].queue");
    assert!(error.problem.contains("support"));
}

#[test]
fn ivr_entry_with_queue_of_other_language_is_reported() {
    let text = BASE.replace("queue = \"dtm-ru\"", "queue = \"dtm-uz\"");
    expect_error(&errors(&text), "tenant.dtm.ivr.languages[1].queue");
}

#[test]
fn duplicate_and_invalid_ivr_digits_are_reported() {
    let text = BASE
        .replace(
            "{ digit = \"2\", language = \"ru\"",
            "{ digit = \"1\", language = \"ru\"",
        )
        .replace(
            "{ digit = \"0\", topic = \"other\"",
            "{ digit = \"10\", topic = \"other\"",
        );
    let errors = errors(&text);
    expect_error(&errors, "tenant.dtm.ivr.languages[1].digit");
    expect_error(&errors, "tenant.dtm.ivr.topics[1].digit");

    let errors = errors_of(&BASE.replace("{ digit = \"1\", topic", "{ digit = \"a\", topic"));
    expect_error(&errors, "tenant.dtm.ivr.topics[0].digit");
    let star = parse(&BASE.replace("{ digit = \"0\", topic", "{ digit = \"#\", topic"));
    assert!(star.is_ok());
}

#[test]
fn ivr_defaults_must_be_in_the_menu() {
    let text = BASE
        .replace("default_language = \"uz\"", "default_language = \"en\"")
        .replace("default_topic = \"other\"", "default_topic = \"weather\"");
    let errors = errors(&text);
    expect_error(&errors, "tenant.dtm.ivr.default_language");
    expect_error(&errors, "tenant.dtm.ivr.default_topic");

    let missing = BASE.replace("default_topic = \"other\"", "");
    expect_error(&errors_of(&missing), "tenant.dtm.ivr.default_topic");
    let hangup = missing.replace("[tenant.ivr]", "[tenant.ivr]\non_no_input = \"hangup\"");
    assert!(parse(&hangup).is_ok());
    let bad_policy = BASE.replace("[tenant.ivr]", "[tenant.ivr]\non_no_input = \"repeat\"");
    let error = expect_error(&errors_of(&bad_policy), "tenant.dtm.ivr.on_no_input");
    assert!(error.fix.contains("hangup"));
}

#[test]
fn unsupported_language_is_reported() {
    let text = BASE.replace(
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"",
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"en\"",
    );
    let errors = errors(&text);
    let error = expect_error(&errors, "queue[0].language");
    assert!(error.fix.contains("uz, ru"));
}

#[test]
fn operator_checks() {
    let text = BASE.replace(
        "ha1 = \"5917c31d3ac0492b9f830106472ca074\"\nlanguages = [\"uz\", \"ru\"]",
        "ha1 = \"5917c31d3ac0492b9f830106472ca07\"\nlanguages = []\ntopics = [\"weather\"]",
    );
    let errors = errors(&text);
    let error = expect_error(&errors, "operator[0].ha1");
    assert!(error.fix.contains("md5sum"), "{error}");
    expect_error(&errors, "operator[0].languages");
    expect_error(&errors, "operator[0].topics[0]");

    let uppercase = BASE.replace(
        "5917c31d3ac0492b9f830106472ca074",
        "5917C31D3AC0492B9F830106472CA074",
    );
    assert_eq!(
        parse(&uppercase).unwrap().operators[0].ha1,
        "5917c31d3ac0492b9f830106472ca074"
    );
}

#[test]
fn operator_language_without_queue_is_reported() {
    let text = BASE
        .replace(
            "{ digit = \"2\", language = \"ru\", queue = \"dtm-ru\" },",
            "",
        )
        .replace(
            "[[queue]]\nid = \"dtm-ru\"\ntenant = \"dtm\"\nlanguage = \"ru\"\n",
            "",
        );
    let errors = errors(&text);
    let error = expect_error(&errors, "operator[0].languages[1]");
    assert!(error.problem.contains("ru"));
}

#[test]
fn unknown_strategy_lists_the_valid_ones() {
    let text = BASE.replace(
        "language = \"ru\"\n\n[[operator]]",
        "language = \"ru\"\nstrategy = \"random\"\n\n[[operator]]",
    );
    let error = expect_error(&errors(&text), "queue[1].strategy");
    for name in StrategyName::NAMES {
        assert!(error.fix.contains(name), "{error}");
    }
}

#[test]
fn channel_limits_are_checked() {
    let zero = format!("{BASE}\n[limits]\nchannels = 0\n");
    expect_error(&errors(&zero), "limits.channels");
    let over = BASE.replace("hours = \"24/7\"", "hours = \"24/7\"\nchannels = 400");
    let error = expect_error(&errors(&over), "tenant.dtm.channels");
    assert!(error.problem.contains("300"));
    let tenant_zero = BASE.replace("hours = \"24/7\"", "hours = \"24/7\"\nchannels = 0");
    expect_error(&errors(&tenant_zero), "tenant.dtm.channels");
}

#[test]
fn queue_timing_is_checked() {
    let text = BASE.replace(
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"",
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"\nring_timeout_secs = 0\nmax_missed_offers = 0\nmax_waiting = 0",
    );
    let errors = errors(&text);
    expect_error(&errors, "queue[0].ring_timeout_secs");
    expect_error(&errors, "queue[0].max_missed_offers");
    expect_error(&errors, "queue[0].max_waiting");

    let short_wait = BASE.replace(
        "id = \"dtm-ru\"\ntenant = \"dtm\"\nlanguage = \"ru\"",
        "id = \"dtm-ru\"\ntenant = \"dtm\"\nlanguage = \"ru\"\nmax_wait_secs = 10\nring_timeout_secs = 20",
    );
    expect_error(&errors_of(&short_wait), "queue[1].max_wait_secs");

    let surge = BASE.replace(
        "id = \"dtm-ru\"\ntenant = \"dtm\"\nlanguage = \"ru\"",
        "id = \"dtm-ru\"\ntenant = \"dtm\"\nlanguage = \"ru\"\n[queue.surge]\nmax_wait_secs = 5",
    );
    expect_error(&errors_of(&surge), "queue[1].surge.max_wait_secs");
}

#[test]
fn queue_topics_must_be_in_the_tenant_menu() {
    let text = BASE.replace(
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"",
        "id = \"dtm-uz\"\ntenant = \"dtm\"\nlanguage = \"uz\"\ntopics = [\"results\", \"weather\"]",
    );
    let errors = errors(&text);
    assert!(!errors.has("queue[0].topics[0]"));
    expect_error(&errors, "queue[0].topics[1]");
}

#[test]
fn demo_credentials_are_refused_off_loopback() {
    let text = BASE.replace(
        "udp = \"127.0.0.1:5060\"",
        "udp = \"127.0.0.1:5060\"\ntcp = \"192.0.2.10:5060\"",
    );
    let errors = errors(&text);
    let error = expect_error(&errors, "operator[0].ha1");
    assert!(error.problem.contains("only allowed"), "{error}");
    assert!(error.problem.contains("loopback"), "{error}");
    assert!(error.fix.contains("printf '1001:navbat:"), "{error}");
    assert!(error.fix.contains("md5sum"), "{error}");

    let real = text.replace(
        "5917c31d3ac0492b9f830106472ca074",
        &digest_ha1("1001", "navbat", "x"),
    );
    assert!(parse(&real).is_ok());
}

#[test]
fn demo_admin_token_is_refused_off_loopback() {
    let text =
        format!("{BASE}\n[http]\nlisten = \"0.0.0.0:8080\"\nadmin_token = \"demo-admin-token\"\n");
    expect_error(&errors(&text), "http.admin_token");
}

#[test]
fn the_event_feed_is_bounded_in_mib_with_a_default() {
    assert_eq!(parse(BASE).unwrap().http.events_feed_bytes, 16 << 20);
    let text = format!("{BASE}\n[http]\nevents_feed_mib = 64\n");
    assert_eq!(parse(&text).unwrap().http.events_feed_bytes, 64 << 20);
    for bad in ["0", "4096"] {
        let text = format!("{BASE}\n[http]\nevents_feed_mib = {bad}\n");
        let error = expect_error(&errors(&text), "http.events_feed_mib");
        assert!(error.fix.contains("16"), "{error}");
    }
}

#[test]
fn the_sip_runtime_has_one_worker_unless_told() {
    assert_eq!(parse(BASE).unwrap().sip.threads, 1);
    let with = |line: &str| BASE.replacen("[sip]\n", &format!("[sip]\n{line}\n"), 1);
    assert_eq!(parse(&with("threads = 4")).unwrap().sip.threads, 4);
    for bad in ["0", "65"] {
        let error = expect_error(&errors(&with(&format!("threads = {bad}"))), "sip.threads");
        assert!(error.fix.contains("1 to 64"), "{error}");
    }
}

#[test]
fn one_bad_entry_does_not_cause_echo_errors() {
    // The queue fails to read; the IVR entry naming it must not add "no such queue".
    let text = BASE.replace(
        "id = \"dtm-ru\"\ntenant = \"dtm\"",
        "id = \"dtm-ru\"\ntenant = \"dtm\"\nbogus = 1",
    );
    let errors = errors(&text);
    expect_error(&errors, "queue[1].bogus");
    assert_eq!(errors.0.len(), 1, "{errors}");
}

#[test]
fn no_tenant_is_reported() {
    let errors = errors("[sip]\nudp = \"127.0.0.1:5060\"\n");
    expect_error(&errors, "tenant");
}

#[test]
fn opening_hours_follow_the_tenant_zone_and_holidays() {
    let config = Config::embedded_default();
    let support = config.tenant("support").unwrap();
    let at = |text: &str| -> jiff::Timestamp { text.parse().unwrap() };
    // Tuesday 2026-03-10: 08:00 Tashkent is 03:00 UTC.
    assert!(!support.is_open(at("2026-03-10T02:59:59Z")));
    assert!(support.is_open(at("2026-03-10T03:00:00Z")));
    assert!(support.is_open(at("2026-03-10T14:59:59Z")));
    assert!(!support.is_open(at("2026-03-10T15:00:00Z")));
    // Saturday.
    assert!(!support.is_open(at("2026-03-14T06:00:00Z")));
    // Navruz, a Saturday in 2026 anyway; Independence Day 2026-09-01 is a Tuesday.
    assert!(!support.is_open(at("2026-09-01T06:00:00Z")));
    // 2026-08-31 23:30 UTC is already 1 September in Tashkent.
    assert!(!support.is_open(at("2026-08-31T23:30:00Z")));
    let dtm = config.tenant("dtm").unwrap();
    assert!(dtm.is_open(at("2026-09-01T06:00:00Z")));
    assert!(dtm.is_open(at("2026-03-14T22:00:00Z")));
}

#[test]
fn clock_time_parsing() {
    assert_eq!(ClockTime::parse("08:00").unwrap().minutes(), 480);
    assert_eq!(ClockTime::parse("24:00"), Some(ClockTime::END_OF_DAY));
    for bad in ["8:00", "24:01", "12:60", "noon", "12:00:00"] {
        assert!(ClockTime::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn load_reports_unreadable_file() {
    let errors = Config::load(Path::new("/nonexistent/navbat.toml")).unwrap_err();
    assert_eq!(errors.0[0].file, "/nonexistent/navbat.toml");
    assert!(!errors.0[0].fix.is_empty());
}

#[test]
fn missing_key_and_wrong_type_in_nested_tables_are_located() {
    let text = BASE.replace("{ digit = \"2\", language", "{ digit = 2, language");
    let errors = errors(&text);
    expect_error(&errors, "tenant[0].ivr.languages[1].digit");

    let text = BASE.replace("timezone = \"Asia/Tashkent\"\n", "");
    let errors = errors_of(&text);
    let error = errors.0.first().unwrap();
    assert!(error.field.starts_with("tenant[0]"), "{error}");
    assert!(error.problem.contains("timezone"), "{error}");
    assert!(!error.fix.is_empty());
}

// --- [node], [database], [presence], [history] (issue 4) ---

#[test]
fn store_sections_default_to_sqlite_memory_presence_and_a_week() {
    let config = Config::embedded_default();
    assert_eq!(config.node.id, "navbat");
    assert_eq!(config.database.url, None);
    assert_eq!(
        config.database.resolve_url(None).unwrap(),
        DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.into())
    );
    assert_eq!(config.presence.backend, PresenceBackend::Memory);
    assert_eq!(
        config.history.repeat_window,
        Duration::from_secs(7 * 86_400)
    );
    assert!(config.database.buffer_events >= 100_000);
}

#[test]
fn database_url_in_the_file_wins_over_the_environment() {
    let text = format!("{BASE}\n[database]\nurl = \"postgres://u:secret@db:5432/navbat\"\n");
    let config = Config::from_toml_str(&text, "t.toml").unwrap();
    let url = config
        .database
        .resolve_url(Some("sqlite://other.db"))
        .unwrap();
    assert_eq!(url.backend(), "postgres");
    assert_eq!(url.to_string(), "postgres://u:***@db:5432/navbat");
    assert!(!format!("{url:?}").contains("secret"));
    // Without the key, DATABASE_URL is used; a bad one names the variable.
    let config = Config::embedded_default();
    assert_eq!(
        config
            .database
            .resolve_url(Some("postgres://h/x"))
            .unwrap()
            .backend(),
        "postgres"
    );
    let bad = config
        .database
        .resolve_url(Some("mysql://h/x"))
        .unwrap_err();
    assert_eq!(bad.field, "DATABASE_URL");
}

#[test]
fn bad_store_settings_name_the_field_and_the_fix() {
    let text = format!(
        "{BASE}\n[database]\nurl = \"mysql://x\"\nbuffer_events = 10\ndb_batch_events = 0\n\
         [presence]\nbackend = \"redis\"\nheartbeat_secs = 5\nexpiry_secs = 6\n\
         [history]\nrepeat_window_days = 0\n"
    );
    let errors = errors(&text);
    expect_error(&errors, "database.url");
    expect_error(&errors, "database.buffer_events");
    expect_error(&errors, "database.db_batch_events");
    let e = expect_error(&errors, "presence.redis_url");
    assert!(e.fix.contains("redis://"));
    expect_error(&errors, "presence.expiry_secs");
    let e = expect_error(&errors, "node.id");
    assert!(e.fix.contains("[node]"));
    expect_error(&errors, "history.repeat_window_days");
}

#[test]
fn redis_presence_with_a_node_id_is_accepted() {
    let text = format!(
        "{BASE}\n[node]\nid = \"node-a\"\n[presence]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\n"
    );
    let config = Config::from_toml_str(&text, "t.toml").unwrap();
    assert_eq!(config.node.id, "node-a");
    assert_eq!(
        config.presence.backend,
        PresenceBackend::Redis {
            url: "redis://127.0.0.1:6379".into()
        }
    );
    let memory_with_url = format!("{BASE}\n[presence]\nredis_url = \"redis://h\"\n");
    expect_error(&errors(&memory_with_url), "presence.redis_url");
}

#[test]
fn auth_guard_defaults_and_limits() {
    let config = parse(&BASE.replace("channels-placeholder", "")).unwrap();
    let g = config.sip.auth_guard;
    assert_eq!(g.window, Duration::from_secs(600));
    assert_eq!((g.account_throttle_after, g.source_ban_after), (5, 20));
    assert_eq!(g.account_max_throttle, Duration::from_secs(60));
    assert_eq!(g.source_ban, Duration::from_secs(900));
    let text = BASE.replace("channels-placeholder", "").replace(
        "udp = \"127.0.0.1:5060\"",
        "udp = \"127.0.0.1:5060\"\n\n[sip.auth_guard]\nsource_ban_after = 0\nsource_ban_secs = 30",
    );
    let errors = errors(&text);
    expect_error(&errors, "sip.auth_guard.source_ban_after");
    assert_eq!(errors.0.len(), 1, "{errors}");
    let typo = BASE.replace("channels-placeholder", "").replace(
        "udp = \"127.0.0.1:5060\"",
        "udp = \"127.0.0.1:5060\"\n\n[sip.auth_guard]\nban_after = 3",
    );
    assert!(parse(&typo).is_err(), "an unknown key is an error");
}

#[test]
fn sip_door_defaults_and_limits() {
    let config = parse(&BASE.replace("channels-placeholder", "")).unwrap();
    let d = &config.sip.door;
    assert_eq!(
        (d.source_invites_per_sec, d.source_burst, d.source_calls),
        (20, 40, 30)
    );
    assert_eq!(
        (d.trunk_invites_per_sec, d.trunk_burst, d.trunk_calls),
        (2000, 4000, 0)
    );
    assert_eq!(
        (d.answers_per_sec, d.queue, d.max_sources),
        (100, 4096, 65536)
    );
    assert!(d.trunk_sources.is_empty());
    let with = |keys: &str| {
        BASE.replace("channels-placeholder", "").replace(
            "udp = \"127.0.0.1:5060\"",
            &format!("udp = \"127.0.0.1:5060\"\n\n[sip.door]\n{keys}"),
        )
    };
    let set = parse(&with(
        "source_calls = 5\ntrunk_sources = [\"192.0.2.0/24\", \"2001:db8::1\"]",
    ))
    .unwrap();
    assert_eq!(set.sip.door.source_calls, 5);
    assert_eq!(set.sip.door.trunk_sources.len(), 2);
    assert_eq!(set.trunk_networks().len(), 2);
    let bad = errors(&with(
        "source_invites_per_sec = 0\nqueue = 10\nmax_sources = 5\ntrunk_sources = [\"nowhere\"]",
    ));
    expect_error(&bad, "sip.door.source_invites_per_sec");
    expect_error(&bad, "sip.door.queue");
    expect_error(&bad, "sip.door.max_sources");
    expect_error(&bad, "sip.door.trunk_sources[0]");
    assert!(
        parse(&with("calls = 3")).is_err(),
        "an unknown key is an error"
    );
}

#[test]
fn trunk_sources_are_addresses_or_networks() {
    let with = |list: &str| {
        BASE.replace("channels-placeholder", "").replace(
            "hours = \"24/7\"",
            &format!("hours = \"24/7\"\ntrunk_sources = {list}"),
        )
    };
    let config = parse(&with(
        "[\"192.0.2.10\", \"10.1.0.0/16\", \"2001:db8::/32\"]",
    ))
    .unwrap();
    let dtm = config.tenant("dtm").unwrap();
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    assert!(dtm.accepts_calls_from(ip("192.0.2.10")));
    assert!(!dtm.accepts_calls_from(ip("192.0.2.11")));
    assert!(dtm.accepts_calls_from(ip("10.1.255.7")));
    assert!(!dtm.accepts_calls_from(ip("10.2.0.1")));
    assert!(dtm.accepts_calls_from(ip("2001:db8:1::5")));
    assert!(dtm.accepts_calls_from(ip("::ffff:10.1.0.1")), "IPv4-mapped");
    assert!(!dtm.accepts_calls_from(None), "unknown source with a list");
    let open = parse(&with("[\"0.0.0.0/0\"]")).unwrap();
    assert!(open
        .tenant("dtm")
        .unwrap()
        .accepts_calls_from(ip("203.0.113.9")));
    let any = parse(&BASE.replace("channels-placeholder", "")).unwrap();
    assert!(
        any.tenant("dtm").unwrap().accepts_calls_from(None),
        "no list: anyone"
    );
    let bad = errors(&with("[\"10.0.0.0/33\", \"trunk.example\"]"));
    expect_error(&bad, "tenant.dtm.trunk_sources[0]");
    expect_error(&bad, "tenant.dtm.trunk_sources[1]");
    expect_error(&errors(&with("[]")), "tenant.dtm.trunk_sources");
}

#[test]
fn sip_tcp_limits_are_checked_and_name_their_fields() {
    let defaults = Config::embedded_default().sip.tcp_limits;
    assert_eq!((defaults.per_source, defaults.total), (16, 1024));
    assert_eq!(defaults.header_deadline, Duration::from_secs(5));
    for (line, wrong, field) in [
        (
            "per_source = 16",
            "per_source = 0",
            "sip.tcp_limits.per_source",
        ),
        ("total = 1024", "total = 10", "sip.tcp_limits.per_source"),
        (
            "header_deadline_secs = 5",
            "header_deadline_secs = 0",
            "sip.tcp_limits.header_deadline_secs",
        ),
        (
            "idle_secs = 900",
            "idle_secs = 1",
            "sip.tcp_limits.idle_secs",
        ),
        (
            "max_message_bytes = 65535",
            "max_message_bytes = 100",
            "sip.tcp_limits.max_message_bytes",
        ),
    ] {
        let toml = crate::config::EMBEDDED_DEFAULT_TOML.replacen(line, wrong, 1);
        assert_ne!(toml, crate::config::EMBEDDED_DEFAULT_TOML, "{line}");
        let errors = Config::from_toml_str(&toml, "test.toml").unwrap_err();
        expect_error(&errors, field);
    }
}
