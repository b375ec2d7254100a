//! [`Admin`]: topic management, cluster metadata and the cluster's description. Requests go to
//! any broker (it forwards internally); list-offsets goes to each partition's leader shard. A
//! topic-level error comes back as [`ClientError::Broker`] with the code and the broker's
//! message.

use std::collections::{BTreeMap, HashMap};

use crate::protocol::{
    AlterTopicConfigsRequest, AlterableTopic, ApiKey, ConfigEntry, CreatableTopic,
    CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeClusterResponse,
    DescribeTopicsRequest, ListTopicsRequest, ListedTopic, MetadataResponse, OffsetSpec, Request,
    Response, TopicDescription, TopicResult,
};

use super::net::unexpected;
use super::{Client, ClientConfig, ClientError, ListedOffset, TopicPartition};

/// A topic to create.
///
/// ```
/// use quiver_transport::client::NewTopic;
/// let topic = NewTopic::new("orders", 6).config("retention.ms", "86400000");
/// assert_eq!(topic.partitions, 6);
/// assert_eq!(topic.configs["retention.ms"], "86400000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partitions; -1 for the broker default.
    pub partitions: i32,
    /// Replicas per partition; -1 for the broker default.
    pub replication_factor: i16,
    /// Config overrides (`retention.ms`, `cleanup.policy`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, the default replication factor and no overrides.
    pub fn new(name: impl Into<String>, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, replicas: i16) -> Self {
        self.replication_factor = replicas;
        self
    }

    /// Adds a config override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// Topic and cluster administration.
///
/// ```no_run
/// # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
/// use quiver_transport::client::*;
/// use quiver_transport::protocol::{ErrorCode, OffsetSpec};
///
/// let config = ClientConfig::new("127.0.0.1:9190", ClientConfig::trust_from_env_or_default()?);
/// let admin = Admin::connect(config).await?;
/// match admin.create_topic(NewTopic::new("orders", 3)).await {
///     Err(e) if e.error_code() == Some(ErrorCode::TopicAlreadyExists) => {}
///     other => other?,
/// }
/// let described = admin.describe_topic("orders").await?;
/// for p in &described.partitions {
///     println!("{} leader {} offsets {}..{}", p.partition, p.leader_id, p.log_start_offset, p.log_end_offset);
/// }
/// let ends = admin.list_offsets(&[(TopicPartition::new("orders", 0), OffsetSpec::Latest)]).await?;
/// admin.alter_topic_configs("orders", vec![("retention.ms".into(), Some("3600000".into()))]).await?;
/// admin.delete_topic("orders").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Connects to the cluster.
    pub async fn connect(config: ClientConfig) -> Result<Admin, ClientError> {
        Ok(Admin::new(Client::connect(config).await?))
    }

    /// An admin on an existing [`Client`]. The apis used are checked per request.
    pub fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// The shared client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates one topic.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<(), ClientError> {
        let name = topic.name.clone();
        self.create_topics(vec![topic], false)
            .await?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or_else(
                || {
                    Err(ClientError::Protocol(format!(
                        "no CreateTopics result for {name}"
                    )))
                },
                |(_, result)| result,
            )
    }

    /// Creates topics (or, with `validate_only`, checks they could be); one result per topic.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone(),
                    partition_count: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| ConfigEntry {
                            name: k.clone(),
                            value: Some(v.clone()),
                        })
                        .collect(),
                })
                .collect(),
            timeout_ms: self.timeout_ms(),
            validate_only,
        };
        let response = self.client.request_any(request.into()).await?;
        let Response::CreateTopics(response) = response else {
            return Err(unexpected(ApiKey::CreateTopics, &response));
        };
        for t in &topics {
            self.client.invalidate_metadata(&t.name);
        }
        Ok(response
            .topics
            .into_iter()
            .map(|t| {
                let result = outcome(t.error_code, t.error_message, &t.name);
                (t.name, result)
            })
            .collect())
    }

    /// Deletes one topic and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        single(self.delete_topics(vec![name.to_string()]).await?, name)
    }

    /// Deletes topics; one result per topic.
    pub async fn delete_topics(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = DeleteTopicsRequest {
            names: names.clone(),
            timeout_ms: self.timeout_ms(),
        };
        let response = self.client.request_any(request.into()).await?;
        let Response::DeleteTopics(response) = response else {
            return Err(unexpected(ApiKey::DeleteTopics, &response));
        };
        for name in &names {
            self.client.invalidate_metadata(name);
        }
        Ok(results(response.topics))
    }

    /// Every topic with its partition count (internal ones too if asked).
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<ListedTopic>, ClientError> {
        let response = self
            .client
            .request_any(ListTopicsRequest { include_internal }.into())
            .await?;
        match response {
            Response::ListTopics(response) => Ok(response.topics),
            other => Err(unexpected(ApiKey::ListTopics, &other)),
        }
    }

    /// One topic's partitions (leader, replicas, log start and end offsets) and effective
    /// configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        self.describe_topics(vec![name.to_string()])
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(ClientError::Protocol(format!("no description of {name}"))))
    }

    /// Several topics' descriptions; a topic-level error becomes that topic's `Err`.
    pub async fn describe_topics(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<Result<TopicDescription, ClientError>>, ClientError> {
        let response = self
            .client
            .request_any(Request::from(DescribeTopicsRequest { names }))
            .await?;
        let Response::DescribeTopics(response) = response else {
            return Err(unexpected(ApiKey::DescribeTopics, &response));
        };
        Ok(response
            .topics
            .into_iter()
            .map(|t| {
                if t.error_code.is_ok() {
                    Ok(t)
                } else {
                    Err(ClientError::broker(
                        t.error_code,
                        t.error_message,
                        &t.name,
                        None,
                    ))
                }
            })
            .collect())
    }

    /// Sets (`Some`) or resets to default (`None`) config keys of a topic; others keep their
    /// values.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), ClientError> {
        let request = AlterTopicConfigsRequest {
            topics: vec![AlterableTopic {
                name: name.to_string(),
                configs: changes
                    .into_iter()
                    .map(|(name, value)| ConfigEntry { name, value })
                    .collect(),
            }],
            validate_only: false,
        };
        let response = self.client.request_any(request.into()).await?;
        let Response::AlterTopicConfigs(response) = response else {
            return Err(unexpected(ApiKey::AlterTopicConfigs, &response));
        };
        single(results(response.topics), name)
    }

    /// Earliest, latest, or by-timestamp offsets, asked of each partition's leader shard.
    pub async fn list_offsets(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<HashMap<TopicPartition, ListedOffset>, ClientError> {
        self.client.list_offsets(specs).await
    }

    /// Raw cluster metadata: brokers, and `topics` (`None` for all).
    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        self.client.metadata(topics).await
    }

    /// The cluster as one broker sees it (any bootstrap or known broker answers): cluster id,
    /// active controller, how far that broker applied the metadata log, and its metadata image
    /// (empty when the broker runs without a cluster). A non-None `error_code` in the answer
    /// becomes [`ClientError::Broker`] with the broker's message.
    pub async fn describe_cluster(&self) -> Result<DescribeClusterResponse, ClientError> {
        let response = self
            .client
            .request_any(DescribeClusterRequest {}.into())
            .await?;
        match response {
            Response::DescribeCluster(r) if r.error_code.is_ok() => Ok(r),
            Response::DescribeCluster(r) => Err(ClientError::Broker {
                code: r.error_code,
                message: r.error_message,
                topic: None,
                partition: None,
            }),
            other => Err(unexpected(ApiKey::DescribeCluster, &other)),
        }
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.client.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

fn outcome(
    code: crate::protocol::ErrorCode,
    message: Option<String>,
    topic: &str,
) -> Result<(), ClientError> {
    if code.is_ok() {
        Ok(())
    } else {
        Err(ClientError::broker(code, message, topic, None))
    }
}

fn results(topics: Vec<TopicResult>) -> Vec<(String, Result<(), ClientError>)> {
    topics
        .into_iter()
        .map(|t| {
            let result = outcome(t.error_code, t.error_message, &t.name);
            (t.name, result)
        })
        .collect()
}

fn single(results: Vec<(String, Result<(), ClientError>)>, name: &str) -> Result<(), ClientError> {
    results.into_iter().find(|(n, _)| n == name).map_or_else(
        || Err(ClientError::Protocol(format!("no result for topic {name}"))),
        |(_, result)| result,
    )
}
