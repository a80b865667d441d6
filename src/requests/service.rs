//! The requests service: the [`Book`] behind a lock, the journal behind it. Every intake and
//! change is staged in the book and handed to the journal under the lock (so the journal's
//! order is the book's), then awaited outside it: the caller hears "done" only once the step
//! is fsynced.

use super::book::{Book, Intake, NewRequest, RequestError, Staged};
use super::{Change, Head, RequestStep};
use crate::store::outbox::StoreRecord;
use crate::store::Store;
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The requests of this node.
pub struct Requests {
    book: Mutex<Book>,
    store: Option<Store>,
    zones: HashMap<String, TimeZone>,
    changed: tokio::sync::broadcast::Sender<String>,
    courier: Mutex<Option<tokio::sync::mpsc::Sender<super::courier::Job>>>,
    clocks: Arc<super::clocks::Clocks>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Requests")
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Requests {
    /// The service for `config`'s tenants. With a store the book waits for
    /// [`Requests::restore`]; without one every change is refused (requests need the journal).
    pub fn new(config: &crate::config::Config, store: Option<Store>) -> Arc<Requests> {
        let book = match &store {
            Some(_) => Book::not_ready(&config.node.id),
            None => Book::new(&config.node.id),
        };
        Arc::new(Requests {
            book: Mutex::new(book),
            store,
            zones: config
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.timezone.clone()))
                .collect(),
            changed: tokio::sync::broadcast::channel(256).0,
            courier: Mutex::new(None),
            clocks: Arc::new(super::clocks::Clocks::new(config)),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether intake works (the book was restored).
    pub fn is_ready(&self) -> bool {
        self.store.is_some() && self.book().is_ready()
    }

    /// Reads the book back from the database and the journal's undrained steps; retries every
    /// 5 s while the database does not answer (intake is refused meanwhile: mail and Telegram
    /// wait in their sources, the form says to try again).
    pub async fn restore(self: Arc<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let undrained = store.take_undrained_requests();
        loop {
            let db = store.db().clone();
            let read = store
                .run(async move {
                    super::db::restore(db.pool(), db.pii().map(|p| &**p), now_ms()).await
                })
                .await;
            match read {
                Ok(Ok(r)) => {
                    let open = r.heads.len();
                    self.book()
                        .restore(r.heads, r.keys, r.numbers, undrained.clone());
                    tracing::info!(open, "requests restored");
                    self.requeue(&store, &undrained).await;
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read requests yet; retrying in 5 s")
                }
                Err(_) => return,
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    /// Each tenant's SLA rules and calendar.
    pub fn clocks(&self) -> Arc<super::clocks::Clocks> {
        self.clocks.clone()
    }

    /// Connects the courier (outbound mail and Telegram messages).
    pub fn set_courier(&self, tx: tokio::sync::mpsc::Sender<super::courier::Job>) {
        *self.courier.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    fn hand_to_courier(&self, job: super::courier::Job) {
        let courier = self
            .courier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match courier {
            Some(tx) => {
                if tx.try_send(job).is_err() {
                    // Stays queued on disk; sent after the next start.
                    metrics::counter!("navbat_request_messages_deferred_total").increment(1);
                    tracing::warn!(
                        "courier queue full: a request message waits for the next start"
                    );
                }
            }
            None => tracing::warn!(request = %job.request, "no courier for request messages"),
        }
    }

    /// Hands the messages still `queued` after a restart to the courier.
    async fn requeue(&self, store: &Store, undrained: &[RequestStep]) {
        let db = store.db().clone();
        let queued = store
            .run(async move { super::db::queued(db.pool(), db.pii().map(|p| &**p)).await })
            .await;
        let mut jobs: Vec<super::courier::Job> = Vec::new();
        if let Ok(Ok(rows)) = queued {
            for (request, message) in rows {
                if let Some(head) = self.head(&request) {
                    jobs.extend(super::courier::Job::of(&head, &message));
                }
            }
        }
        // Steps the database has not seen yet: their messages, unless delivered since.
        for step in undrained {
            if let Some(job) = step
                .change
                .message()
                .and_then(|m| super::courier::Job::of(&step.head, m))
            {
                let delivered = undrained.iter().any(|s| {
                    matches!(&s.change, Change::Delivery { message_uid, .. } if *message_uid == job.message_uid)
                });
                if !delivered && !jobs.iter().any(|j| j.message_uid == job.message_uid) {
                    jobs.push(job);
                }
            }
        }
        for job in jobs {
            self.hand_to_courier(job);
        }
    }

    /// A notice per changed request (the inbox's live updates).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    /// Waits up to 5 s for the book to be restored (a request right after start-up).
    async fn ready(&self) -> Result<(), RequestError> {
        if self.store.is_none() {
            return Err(RequestError::NotKept);
        }
        for _ in 0..50 {
            if self.book().is_ready() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(RequestError::NotReady)
    }

    /// `yymmdd` of now in the tenant's zone.
    pub fn day_of(&self, tenant: &str, now: i64) -> String {
        let zone = self.zones.get(tenant).cloned().unwrap_or(TimeZone::UTC);
        let ts = jiff::Timestamp::from_millisecond(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let d = zone.to_datetime(ts).date();
        format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
    }

    /// The intake key of a missed call from `number` on `day`: one request per number and
    /// local day. The key is stored with the request, so it holds the number's lookup hash,
    /// not its digits ([`crate::store::seal::phone_key`]); without a store (nothing is kept)
    /// the digits.
    pub fn phone_key(&self, tenant: &str, number: &str, day: &str) -> String {
        match &self.store {
            Some(store) => crate::store::seal::phone_key(tenant, &store.pii().lookup(number), day),
            None => super::calls::key(tenant, number, day),
        }
    }

    /// Hands a staged change to the journal (under the book's lock, so the journal's order is
    /// the book's); undoes it if the journal does not take it.
    fn record(
        &self,
        staged: Staged,
        book: &mut Book,
    ) -> Result<(RequestStep, tokio::sync::oneshot::Receiver<()>), RequestError> {
        let Some(store) = &self.store else {
            book.undo(staged);
            return Err(RequestError::NotKept);
        };
        let step = staged.step.clone();
        match store.record(StoreRecord::Request(Box::new(step.clone()))) {
            Ok(ack) => Ok((step, ack)),
            Err(_) => {
                book.undo(staged);
                Err(RequestError::NotKept)
            }
        }
    }

    /// Waits for the fsync of a recorded step, then tells whoever listens.
    async fn kept(
        &self,
        (step, ack): (RequestStep, tokio::sync::oneshot::Receiver<()>),
    ) -> Result<RequestStep, RequestError> {
        ack.await.map_err(|_| RequestError::NotKept)?;
        let _ = self.changed.send(step.head.id.clone());
        if let Some(job) = step
            .change
            .message()
            .and_then(|m| super::courier::Job::of(&step.head, m))
        {
            self.hand_to_courier(job);
        }
        metrics::counter!(
            "navbat_request_steps_total",
            "step" => step.change.name()
        )
        .increment(1);
        Ok(step)
    }

    /// Registers a request, or gives back the one this intake key made before. Returns the
    /// request's number and whether it is new; returns once it is on disk.
    pub async fn intake(
        &self,
        key: Option<&str>,
        new: NewRequest,
    ) -> Result<(String, bool), RequestError> {
        self.ready().await?;
        let now = now_ms();
        let day = self.day_of(&new.tenant, now);
        let channel = new.channel;
        let tenant = new.tenant.clone();
        let (id, recorded) = {
            let mut book = self.book();
            book.prune(now);
            match book.intake(key, new, &day, now)? {
                (Intake::Known(id), _) => return Ok((id, false)),
                (Intake::New(id), Some(staged)) => (id, self.record(staged, &mut book)?),
                (Intake::New(_), None) => return Err(RequestError::NotKept),
            }
        };
        self.kept(recorded).await?;
        metrics::counter!(
            "navbat_requests_registered_total",
            "tenant" => tenant,
            "channel" => channel.as_str()
        )
        .increment(1);
        Ok((id, true))
    }

    /// Applies a change to request `id` (loading it from the database when it is no longer
    /// in memory) and returns the step once it is on disk.
    pub async fn change(
        &self,
        id: &str,
        change: Change,
        actor: &str,
    ) -> Result<RequestStep, RequestError> {
        self.ready().await?;
        if self.book().head(id).is_none() {
            self.load(id).await?;
        }
        let recorded = {
            let mut book = self.book();
            let staged = book.change(id, change, actor, now_ms())?;
            self.record(staged, &mut book)?
        };
        self.kept(recorded).await
    }

    /// A message that arrived with an intake key (a mail's Message-ID, a Telegram message):
    /// appended to request `id` once, however often it is handed in.
    pub async fn inbound(&self, key: &str, id: &str, change: Change) -> Result<bool, RequestError> {
        if self.book().by_key(key).is_some() {
            return Ok(false);
        }
        self.change(id, change, "customer").await.map(|_| true)
    }

    /// Loads a request that left the book (closed long ago) from the database, after the
    /// database has caught up with the journal.
    async fn load(&self, id: &str) -> Result<(), RequestError> {
        let store = self.store.as_ref().ok_or(RequestError::NotKept)?;
        if !store.caught_up(store.mark(), Duration::from_secs(5)).await {
            return Err(RequestError::NotKept);
        }
        let db = store.db().clone();
        let wanted = id.to_owned();
        let head = store
            .run(async move { super::db::head(db.pool(), db.pii().map(|p| &**p), &wanted).await })
            .await
            .map_err(|_| RequestError::NotKept)?
            .map_err(|_| RequestError::NotKept)?
            .ok_or_else(|| RequestError::Unknown(id.to_owned()))?;
        self.book().load(head);
        Ok(())
    }

    /// A copy of a head in memory.
    pub fn head(&self, id: &str) -> Option<Head> {
        self.book().head(id).cloned()
    }

    /// The request an intake or message key belongs to.
    pub fn by_key(&self, key: &str) -> Option<String> {
        self.book().by_key(key).map(str::to_owned)
    }

    /// The request a message id of its thread belongs to.
    pub fn by_external(&self, external_id: &str) -> Option<String> {
        self.book().by_external(external_id).map(str::to_owned)
    }

    /// Copies of the open requests that `keep` wants.
    pub fn open(&self, keep: impl Fn(&Head) -> bool) -> Vec<Head> {
        self.book().open().filter(|h| keep(h)).cloned().collect()
    }

    /// Waits (briefly) until the database shows every step handed over so far, so a page
    /// read right after a change sees it.
    pub async fn settle(&self) {
        if let Some(store) = &self.store {
            store.caught_up(store.mark(), Duration::from_secs(2)).await;
        }
    }
}
