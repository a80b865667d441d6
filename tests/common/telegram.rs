//! A local stand-in for the Telegram Bot API, the one stand-in the tests allow: these
//! machines cannot reach api.telegram.org. It follows the Bot API's documented JSON
//! (<https://core.telegram.org/bots/api>) for the two methods navbat uses:
//!
//! * `getUpdates` (`offset`, `limit`, `timeout`): returns the updates whose `update_id` is at
//!   least `offset`; an update is confirmed, and forgotten, once `getUpdates` is called with a
//!   higher offset; with nothing to return it holds the request up to `timeout` seconds
//!   (capped at 2 s here). Answer: `{"ok":true,"result":[Update...]}` where each Update has
//!   `update_id` and `message` (`message_id`, `date`, `chat` {`id`, `type`: "private"},
//!   `from` {`id`, `is_bot`, `first_name`, `language_code`}, `text`).
//! * `sendMessage` (`chat_id`, `text`): `{"ok":true,"result":Message}`; `403` with
//!   `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`
//!   for a chat that blocked the bot; `429` with `"parameters":{"retry_after":N}` while a
//!   throttle is set.
//!
//! Other methods answer 404 `{"ok":false,"error_code":404,"description":"Not Found"}`.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The bot's token in tests.
pub const TOKEN: &str = "123456789:TESTtokenTESTtokenTESTtoken";

#[derive(Default)]
struct State {
    updates: Vec<Value>,
    next_update: i64,
    next_message: i64,
    sent: Vec<(i64, String)>,
    blocked: HashSet<i64>,
    throttle: u32,
    throttled: u32,
    polls: u64,
    last_given: Option<Value>,
}

/// The stand-in server (threads end with the test process).
pub struct BotApi {
    pub addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl BotApi {
    /// Starts it on a free loopback port.
    pub fn start() -> BotApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Bot API stand-in");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((
            Mutex::new(State {
                next_update: 1000,
                next_message: 1,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = shared.clone();
                std::thread::spawn(move || serve(conn, st));
            }
        });
        BotApi { addr, state }
    }

    /// The `api` value for navbat's config.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A user writes `text` to the bot from a private chat; returns the message id.
    pub fn user_says(&self, chat: i64, first_name: &str, lang: &str, text: &str) -> i64 {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        let update_id = s.next_update;
        s.next_update += 1;
        let message_id = s.next_message;
        s.next_message += 1;
        s.updates.push(json!({
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "date": 1_765_000_000,
                "chat": {"id": chat, "type": "private", "first_name": first_name},
                "from": {"id": chat, "is_bot": false, "first_name": first_name, "language_code": lang},
                "text": text,
            }
        }));
        cv.notify_all();
        message_id
    }

    /// What the bot sent to `chat`, in order.
    pub fn sent_to(&self, chat: i64) -> Vec<String> {
        let s = self.state.0.lock().unwrap();
        s.sent
            .iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Puts the last update given out back, as Telegram does when the offset past it was
    /// never confirmed (navbat died before its next getUpdates).
    pub fn resend_last(&self) {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        if let Some(last) = s.last_given.clone() {
            if !s
                .updates
                .iter()
                .any(|u| u["update_id"] == last["update_id"])
            {
                s.updates.insert(0, last);
            }
        }
        cv.notify_all();
    }

    /// `chat` blocks the bot.
    pub fn block(&self, chat: i64) {
        self.state.0.lock().unwrap().blocked.insert(chat);
    }

    /// The next `n` sendMessage calls get 429 with retry_after 1.
    pub fn throttle(&self, n: u32) {
        self.state.0.lock().unwrap().throttle = n;
    }

    /// How many 429s were given.
    pub fn throttled(&self) -> u32 {
        self.state.0.lock().unwrap().throttled
    }

    /// Updates not yet confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.state.0.lock().unwrap().updates.len()
    }

    /// getUpdates calls so far.
    pub fn polls(&self) -> u64 {
        self.state.0.lock().unwrap().polls
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Bad Request",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

fn serve(stream: TcpStream, state: Arc<(Mutex<State>, Condvar)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let method = path.rsplit('/').next().unwrap_or("");
        if !path.starts_with(&format!("/bot{TOKEN}/")) {
            respond(
                &mut stream,
                404,
                &json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            );
            continue;
        }
        match method {
            "getUpdates" => {
                let offset = params["offset"].as_i64().unwrap_or(0);
                let timeout = params["timeout"].as_u64().unwrap_or(0).min(2);
                let until = Instant::now() + Duration::from_secs(timeout);
                let (lock, cv) = &*state;
                let mut s = lock.lock().unwrap();
                s.polls += 1;
                s.updates
                    .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                while s.updates.is_empty() && Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    s = cv.wait_timeout(s, left).unwrap().0;
                    s.updates
                        .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                }
                let result: Vec<Value> = s.updates.iter().take(100).cloned().collect();
                if let Some(last) = result.last() {
                    s.last_given = Some(last.clone());
                }
                drop(s);
                respond(&mut stream, 200, &json!({"ok": true, "result": result}));
            }
            "sendMessage" => {
                let chat = params["chat_id"].as_i64().unwrap_or(0);
                let text = params["text"].as_str().unwrap_or("").to_owned();
                let mut s = state.0.lock().unwrap();
                if s.throttle > 0 {
                    s.throttle -= 1;
                    s.throttled += 1;
                    drop(s);
                    respond(
                        &mut stream,
                        429,
                        &json!({"ok": false, "error_code": 429,
                            "description": "Too Many Requests: retry after 1",
                            "parameters": {"retry_after": 1}}),
                    );
                    continue;
                }
                if s.blocked.contains(&chat) {
                    drop(s);
                    respond(
                        &mut stream,
                        403,
                        &json!({"ok": false, "error_code": 403,
                            "description": "Forbidden: bot was blocked by the user"}),
                    );
                    continue;
                }
                let message_id = s.next_message;
                s.next_message += 1;
                s.sent.push((chat, text.clone()));
                drop(s);
                respond(
                    &mut stream,
                    200,
                    &json!({"ok": true, "result": {
                        "message_id": message_id,
                        "date": 1_765_000_001,
                        "chat": {"id": chat, "type": "private"},
                        "from": {"id": 123456789, "is_bot": true, "first_name": "navbat"},
                        "text": text,
                    }}),
                );
            }
            _ => respond(
                &mut stream,
                404,
                &json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            ),
        }
    }
}
