//! Consumer-group administration on [`Admin`]: list, describe and delete groups, read and
//! reset their committed offsets, and compute their lag. Group requests go to any broker, which
//! forwards them to the group's coordinator.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::protocol::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, DescribedGroup, ErrorCode,
    FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest, ListedGroup,
    OffsetFetchRequest, OffsetSpec, Response, COORDINATOR_KEY_GROUP,
};

use super::group_consumer::{commit_request, send_commit};
use super::net::unexpected;
use super::{Admin, ClientError, TopicPartition};

/// One committed offset of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The next offset the group will consume.
    pub offset: i64,
    /// The metadata committed with it.
    pub metadata: Option<String>,
}

/// How far a group is behind on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset, if it has one.
    pub committed: Option<i64>,
    /// The partition's log start offset.
    pub log_start: i64,
    /// The partition's log end offset (the next offset to be written).
    pub log_end: i64,
    /// Records the group has yet to consume: log end − committed, or, with nothing committed,
    /// log end − log start (everything retained).
    pub lag: i64,
    /// The member consuming the partition now, if any.
    pub owner: Option<String>,
}

fn group_error(code: ErrorCode, message: Option<String>, group: &str) -> ClientError {
    ClientError::Broker {
        code,
        message: Some(match message {
            Some(m) => m,
            None => format!("group '{group}'"),
        }),
        topic: None,
        partition: None,
    }
}

impl Admin {
    /// The broker and shard coordinating `group`.
    pub async fn find_group_coordinator(
        &self,
        group: &str,
    ) -> Result<FindCoordinatorResponse, ClientError> {
        let request = FindCoordinatorRequest {
            key: group.to_string(),
            key_type: COORDINATOR_KEY_GROUP,
        };
        match self.client().request_any(request.into()).await? {
            Response::FindCoordinator(r) if r.error_code.is_ok() => Ok(r),
            Response::FindCoordinator(r) => Err(group_error(r.error_code, r.error_message, group)),
            other => Err(unexpected(ApiKey::FindCoordinator, &other)),
        }
    }

    /// Every consumer group, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<ListedGroup>, ClientError> {
        let request = ListGroupsRequest {
            states_filter: Vec::new(),
        };
        match self.client().request_any(request.into()).await? {
            Response::ListGroups(r) if r.error_code.is_ok() => Ok(r.groups),
            Response::ListGroups(r) => Err(group_error(
                r.error_code,
                Some("some coordinators did not answer; the list is partial".into()),
                "*",
            )),
            other => Err(unexpected(ApiKey::ListGroups, &other)),
        }
    }

    /// A group's state, assignor and members with their assignments. A group with neither
    /// members nor committed offsets is `GroupIdNotFound`.
    pub async fn describe_group(&self, group: &str) -> Result<DescribedGroup, ClientError> {
        let request = DescribeGroupsRequest {
            groups: vec![group.to_string()],
        };
        match self.client().request_any(request.into()).await? {
            Response::DescribeGroups(mut r) if r.groups.len() == 1 => {
                let g = r.groups.remove(0);
                if g.error_code.is_ok() {
                    Ok(g)
                } else {
                    Err(group_error(g.error_code, g.error_message, group))
                }
            }
            other => Err(unexpected(ApiKey::DescribeGroups, &other)),
        }
    }

    /// Deletes a group without live members, with its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        let request = DeleteGroupsRequest {
            groups: vec![group.to_string()],
        };
        match self.client().request_any(request.into()).await? {
            Response::DeleteGroups(mut r) if r.results.len() == 1 => {
                let g = r.results.remove(0);
                if g.error_code.is_ok() {
                    Ok(())
                } else {
                    Err(group_error(g.error_code, g.error_message, group))
                }
            }
            other => Err(unexpected(ApiKey::DeleteGroups, &other)),
        }
    }

    /// Deletes several groups in one request: one result per group, in the order given (a
    /// group with live members is `NonEmptyGroup`, an unknown one `GroupIdNotFound`).
    pub async fn delete_groups(
        &self,
        groups: &[String],
    ) -> Result<Vec<(String, Result<(), ClientError>)>, ClientError> {
        let request = DeleteGroupsRequest {
            groups: groups.to_vec(),
        };
        let mut results = match self.client().request_any(request.into()).await? {
            Response::DeleteGroups(r) => r.results,
            other => return Err(unexpected(ApiKey::DeleteGroups, &other)),
        };
        Ok(groups
            .iter()
            .map(|group| {
                let result = match results.iter().position(|r| &r.group_id == group) {
                    Some(i) => {
                        let r = results.swap_remove(i);
                        if r.error_code.is_ok() {
                            Ok(())
                        } else {
                            Err(group_error(r.error_code, r.error_message, group))
                        }
                    }
                    None => Err(ClientError::Protocol(format!(
                        "DeleteGroups answer lacks group '{group}'"
                    ))),
                };
                (group.clone(), result)
            })
            .collect())
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub async fn list_group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>, ClientError> {
        let request = OffsetFetchRequest {
            group_id: group.to_string(),
            topics: None,
        };
        let response = match self.client().request_any(request.into()).await? {
            Response::OffsetFetch(r) => r,
            other => return Err(unexpected(ApiKey::OffsetFetch, &other)),
        };
        if !response.error_code.is_ok() {
            return Err(group_error(
                response.error_code,
                response.error_message,
                group,
            ));
        }
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                if !p.error_code.is_ok() {
                    return Err(ClientError::broker(
                        p.error_code,
                        None,
                        &t.name,
                        Some(p.partition),
                    ));
                }
                if p.committed_offset >= 0 {
                    out.push(GroupOffset {
                        partition: TopicPartition::new(&t.name, p.partition),
                        offset: p.committed_offset,
                        metadata: p.metadata,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    /// Sets a group's committed offsets from outside the group (an offset reset). The broker
    /// refuses it with `NonEmptyGroup` while the group has live members.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), ClientError> {
        // From outside the group: no member id, epoch -1.
        let offsets: BTreeMap<TopicPartition, i64> = offsets.iter().cloned().collect();
        send_commit(self.client(), commit_request(group, "", -1, &offsets)).await
    }

    /// Lag of a group on every partition of the topics it commits to or subscribes to (or of
    /// `topics` if given), with the member that owns each partition now.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: Option<&[String]>,
    ) -> Result<Vec<PartitionLag>, ClientError> {
        let committed: HashMap<TopicPartition, i64> = self
            .list_group_offsets(group)
            .await?
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        let description = match self.describe_group(group).await {
            Ok(d) => Some(d),
            Err(e) if e.error_code() == Some(ErrorCode::GroupIdNotFound) => None,
            Err(e) => return Err(e),
        };
        let mut owners: HashMap<TopicPartition, String> = HashMap::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        if let Some(d) = &description {
            for m in &d.members {
                names.extend(m.subscribed_topics.iter().cloned());
                for tp in &m.assignment {
                    for &p in &tp.partitions {
                        owners.insert(TopicPartition::new(&tp.topic, p), m.member_id.clone());
                    }
                }
            }
        }
        names.extend(committed.keys().map(|tp| tp.topic.clone()));
        if let Some(only) = topics {
            names = only.iter().cloned().collect();
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let metadata = self.metadata(Some(names.iter().cloned().collect())).await?;
        let mut partitions: Vec<TopicPartition> = Vec::new();
        for t in metadata.topics {
            if !t.error_code.is_ok() {
                continue;
            }
            partitions.extend(
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(&t.name, p.partition)),
            );
        }
        partitions.sort();
        let mut specs = Vec::with_capacity(partitions.len() * 2);
        for tp in &partitions {
            specs.push((tp.clone(), OffsetSpec::Latest));
        }
        let ends = self.list_offsets(&specs).await?;
        let specs: Vec<_> = partitions
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Earliest))
            .collect();
        let starts = self.list_offsets(&specs).await?;
        Ok(partitions
            .into_iter()
            .map(|tp| {
                let log_end = ends.get(&tp).map_or(-1, |o| o.offset);
                let log_start = starts.get(&tp).map_or(-1, |o| o.offset);
                let committed = committed.get(&tp).copied();
                let lag = match committed {
                    Some(c) => (log_end - c).max(0),
                    None => (log_end - log_start).max(0),
                };
                PartitionLag {
                    owner: owners.get(&tp).cloned(),
                    partition: tp,
                    committed,
                    log_start,
                    log_end,
                    lag,
                }
            })
            .collect())
    }
}
