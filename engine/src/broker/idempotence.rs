//! InitProducerId: producer ids and epochs for idempotent producers.
//!
//! Ids come from one allocator on shard 0 ([`super::producer_ids`]); other shards ask it by
//! message. A producer that already has an id asks again with its id and epoch to get the next
//! epoch (after an out-of-order error, say), which fences any older incarnation of it; when the
//! epoch would overflow it gets a fresh id instead. The per-partition sequence checks happen on
//! append, in the partition log.
//!
//! Lives on: its shard.

use quiver_transport::protocol::{ErrorCode, InitProducerIdRequest, InitProducerIdResponse};

use super::{Call, Reply, ShardBroker};

fn failed(code: ErrorCode, message: String) -> InitProducerIdResponse {
    InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: code,
        error_message: Some(message),
        producer_id: -1,
        producer_epoch: -1,
    }
}

impl ShardBroker {
    /// InitProducerId.
    pub(crate) async fn init_producer_id(
        &self,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        if request
            .transactional_id
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            return failed(
                ErrorCode::InvalidRequest,
                "transactions are not supported: leave transactional_id null".into(),
            );
        }
        if request.producer_id >= 0 && request.producer_epoch >= 0 {
            if let Some(epoch) = request.producer_epoch.checked_add(1) {
                return InitProducerIdResponse {
                    throttle_time_ms: 0,
                    error_code: ErrorCode::None,
                    error_message: None,
                    producer_id: request.producer_id,
                    producer_epoch: epoch,
                };
            }
        } else if request.producer_id >= 0 || request.producer_epoch >= 0 {
            return failed(
                ErrorCode::InvalidRequest,
                format!(
                    "producer id {} and epoch {} must both be -1 (new) or both be set (bump)",
                    request.producer_id, request.producer_epoch
                ),
            );
        }
        let allocated = if self.shard == 0 {
            self.allocate_producer_id_here()
        } else {
            match self.call(0, Call::AllocateProducerId).await {
                Ok(Reply::ProducerId(r)) => r,
                Ok(Reply::Failed(reason)) => Err(reason),
                Ok(_) => Err("shard 0 sent a mismatched reply".into()),
                Err(e) => Err(e.to_string()),
            }
        };
        match allocated {
            Ok(producer_id) => InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                producer_id,
                producer_epoch: 0,
            },
            Err(reason) => failed(
                ErrorCode::CoordinatorNotAvailable,
                format!("allocating a producer id: {reason}"),
            ),
        }
    }

    /// Allocates on this shard (shard 0, which holds the allocator).
    pub(crate) fn allocate_producer_id_here(&self) -> Result<i64, String> {
        let Some(ids) = &self.producer_ids else {
            return Err(format!(
                "shard {} holds no producer-id allocator",
                self.shard
            ));
        };
        let id = ids.borrow_mut().allocate().map_err(|e| e.to_string())?;
        if self.clustered() {
            // Unique across the cluster: the broker id above 40 bits of local ids.
            if id >= 1 << 40 {
                return Err("this broker's producer ids are exhausted".into());
            }
            return Ok((i64::from(self.config.node_id) << 40) | id);
        }
        Ok(id)
    }
}
