//! The routing model: configuration names mapped onto the ACD core's
//! compact ids and skill bits, built once at start-up.

use crate::acd::{
    OperatorId, OperatorSpec, QueueId, QueueParams, QueueSpec, SkillSet, Strategy, TenantId,
};
use crate::config::{Config, QueueTiming, StrategyName};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Names <-> ids for queues, operators, tenants and skills.
#[derive(Debug, Clone)]
pub struct RoutingModel {
    skills: HashMap<String, u8>,
    queues: HashMap<String, QueueId>,
    queue_names: Vec<String>,
    queue_tenant: Vec<TenantId>,
    operators: HashMap<String, OperatorId>,
    operator_exts: Vec<String>,
    tenant_names: Vec<String>,
    /// Whether each tenant is in surge mode, as last switched by the ACD host; read by call
    /// actors when their IVR starts. Shared between clones.
    surge_on: Arc<Vec<AtomicBool>>,
}

/// The configuration uses more languages and topics than the core's 64 skill bits.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} distinct languages and topics configured; at most 64 are supported; fix: merge topics"
)]
pub struct TooManySkills(usize);

fn params(t: &QueueTiming, max_waiting: Option<u32>, live_reserve_percent: u8) -> QueueParams {
    QueueParams {
        max_wait_ms: t.max_wait.as_millis() as u64,
        ring_timeout_ms: t.ring_timeout.as_millis() as u64,
        wrap_up_ms: t.wrap_up.as_millis() as u64,
        max_missed_offers: t.max_missed_offers,
        reserve_after_ms: t.reserve_after.map(|d| d.as_millis() as u64),
        max_waiting,
        live_reserve_percent,
    }
}

impl RoutingModel {
    /// Builds the model and the core's specs from a validated configuration.
    pub fn build(
        config: &Config,
    ) -> Result<(RoutingModel, Vec<QueueSpec>, Vec<OperatorSpec>), TooManySkills> {
        let mut skills: HashMap<String, u8> = HashMap::new();
        let add = |key: String, skills: &mut HashMap<String, u8>| {
            let n = skills.len();
            skills.entry(key).or_insert(n as u8);
        };
        let mut all_topics: Vec<String> = Vec::new();
        for t in &config.tenants {
            for l in &t.ivr.languages {
                add(format!("lang:{}", l.language), &mut skills);
            }
            for tp in &t.ivr.topics {
                if !all_topics.contains(&tp.topic) {
                    all_topics.push(tp.topic.clone());
                }
            }
        }
        for q in &config.queues {
            add(format!("lang:{}", q.language), &mut skills);
            for tp in &q.topics {
                if !all_topics.contains(tp) {
                    all_topics.push(tp.clone());
                }
            }
        }
        for o in &config.operators {
            for l in &o.languages {
                add(format!("lang:{l}"), &mut skills);
            }
            for tp in &o.topics {
                if !all_topics.contains(tp) {
                    all_topics.push(tp.clone());
                }
            }
        }
        for tp in &all_topics {
            add(format!("topic:{tp}"), &mut skills);
        }
        if skills.len() > 64 {
            return Err(TooManySkills(skills.len()));
        }
        let tenant_names: Vec<String> = config.tenants.iter().map(|t| t.id.clone()).collect();
        let tenant_index =
            |id: &str| TenantId(tenant_names.iter().position(|t| t == id).unwrap_or(0) as u16);
        let bit = |key: &str| SkillSet::default().with(skills[key]);
        let mut queue_specs = Vec::new();
        let mut queues = HashMap::new();
        let mut queue_names = Vec::new();
        let mut queue_tenant = Vec::new();
        for (i, q) in config.queues.iter().enumerate() {
            let id = QueueId(i as u16);
            queues.insert(q.id.clone(), id);
            queue_names.push(q.id.clone());
            let tenant = tenant_index(&q.tenant);
            queue_tenant.push(tenant);
            // Callbacks exist in surge, but pending ones outlive it: the reserve holds in both.
            let live_reserve = config
                .tenant(&q.tenant)
                .and_then(|t| t.surge.callback)
                .map_or(0, |c| c.live_reserve_percent);
            queue_specs.push(QueueSpec {
                id,
                tenant,
                name: q.id.clone(),
                skills: bit(&format!("lang:{}", q.language)),
                strategy: match q.strategy {
                    StrategyName::LongestIdle => Strategy::LongestIdle,
                    StrategyName::RoundRobin => Strategy::RoundRobin,
                    StrategyName::FewestCalls => Strategy::FewestCalls,
                    StrategyName::RingAll => Strategy::RingAll,
                },
                normal: params(&q.normal, q.max_waiting, live_reserve),
                surge: params(&q.surge, q.max_waiting, live_reserve),
            });
        }
        let mut op_specs = Vec::new();
        let mut operators = HashMap::new();
        let mut operator_exts = Vec::new();
        for (i, o) in config.operators.iter().enumerate() {
            let id = OperatorId(i as u32);
            operators.insert(o.ext.clone(), id);
            operator_exts.push(o.ext.clone());
            let mut set = SkillSet::default();
            for l in &o.languages {
                set = set.union(bit(&format!("lang:{l}")));
            }
            let topics: &[String] = if o.topics.is_empty() {
                &all_topics
            } else {
                &o.topics
            };
            for tp in topics {
                set = set.union(bit(&format!("topic:{tp}")));
            }
            op_specs.push(OperatorSpec {
                id,
                skills: set,
                reserve: o.reserve,
            });
        }
        Ok((
            RoutingModel {
                skills,
                queues,
                queue_names,
                queue_tenant,
                operators,
                operator_exts,
                surge_on: Arc::new(
                    tenant_names
                        .iter()
                        .map(|_| AtomicBool::new(false))
                        .collect(),
                ),
                tenant_names,
            },
            queue_specs,
            op_specs,
        ))
    }

    /// The skill a call with this topic needs, if the topic is known.
    pub fn topic_skill(&self, topic: Option<&str>) -> SkillSet {
        topic
            .and_then(|t| self.skills.get(&format!("topic:{t}")))
            .map(|b| SkillSet::default().with(*b))
            .unwrap_or_default()
    }

    /// Queue id by name.
    pub fn queue(&self, name: &str) -> Option<QueueId> {
        self.queues.get(name).copied()
    }

    /// Queue name by id.
    pub fn queue_name(&self, id: QueueId) -> &str {
        self.queue_names
            .get(id.0 as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// The tenant of a queue.
    pub fn queue_tenant(&self, id: QueueId) -> TenantId {
        self.queue_tenant
            .get(id.0 as usize)
            .copied()
            .unwrap_or(TenantId(0))
    }

    /// All queue ids.
    pub fn queue_ids(&self) -> impl Iterator<Item = QueueId> {
        (0..self.queue_names.len()).map(|i| QueueId(i as u16))
    }

    /// Operator id by extension.
    pub fn operator(&self, ext: &str) -> Option<OperatorId> {
        self.operators.get(ext).copied()
    }

    /// Extension by operator id.
    pub fn operator_ext(&self, id: OperatorId) -> &str {
        self.operator_exts
            .get(id.0 as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Number of operators.
    pub fn operator_count(&self) -> usize {
        self.operator_exts.len()
    }

    /// Tenant id by name.
    pub fn tenant(&self, name: &str) -> Option<TenantId> {
        self.tenant_names
            .iter()
            .position(|t| t == name)
            .map(|i| TenantId(i as u16))
    }

    /// Whether the tenant is in surge mode now.
    pub fn surge_on(&self, tenant: TenantId) -> bool {
        self.surge_on
            .get(tenant.0 as usize)
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Records a surge switch (only the ACD host calls this, when it switches the core).
    pub fn record_surge(&self, tenant: TenantId, on: bool) {
        if let Some(f) = self.surge_on.get(tenant.0 as usize) {
            f.store(on, Ordering::Relaxed);
        }
    }

    /// Tenant name by id.
    pub fn tenant_name(&self, id: TenantId) -> &str {
        self.tenant_names
            .get(id.0 as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
}
