//! `quiver topic create|list|describe|alter|delete`.
//!
//! Output is one item per line, fields separated by tabs, so it can be piped to `cut`/`awk`:
//! - `list`: `<name>\t<partitions>`;
//! - `describe`: a `topic` line, one `partition` line per partition
//!   (`partition\t<p>\tleader\t<broker>\tlog_start\t<o>\tlog_end\t<o>\treplicas\t<ids>\tisr\t<ids>`,
//!   ids comma-separated), then one
//!   `config\t<key>\t<value>` line per setting.

use clap::{Args, Subcommand};
use quiver_transport::client::{Admin, NewTopic};

use super::{block_on, client_error, parse_key_value, ConnectArgs};
use crate::cli::CliError;

/// `quiver topic <command>`.
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name: letters, digits, `.`, `_`, `-`.
        name: String,
        /// Number of partitions. [default: the broker's default]
        #[arg(long)]
        partitions: Option<i32>,
        /// Copies of each partition, on distinct brokers (a cluster). [default: the broker's
        /// default]
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic setting, `key=value` (repeatable), e.g. `retention.ms=86400000`, `flush=always`.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics, one per line: name and partition count.
    List {
        /// Include internal topics.
        #[arg(long)]
        internal: bool,
    },
    /// Partitions (leader, shard, log start and end offsets) and settings of a topic.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Change topic settings.
    Alter {
        /// Topic name.
        name: String,
        /// A setting to change, `key=value` (repeatable).
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// A setting to reset to the broker's default (repeatable).
        #[arg(long = "delete-config")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic and all its data.
    Delete {
        /// Topic name.
        name: String,
    },
}

/// Runs `quiver topic`.
pub fn run(args: TopicArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let admin = Admin::connect(config)
            .await
            .map_err(client_error("connecting"))?;
        match args.command {
            TopicCommand::Create {
                name,
                partitions,
                replication_factor,
                configs,
            } => {
                let mut topic = NewTopic::new(&name, partitions.unwrap_or(-1))
                    .replication_factor(replication_factor.unwrap_or(-1));
                for (key, value) in configs {
                    topic = topic.config(key, value);
                }
                admin
                    .create_topic(topic)
                    .await
                    .map_err(client_error(format!("creating topic {name}")))?;
                eprintln!("created topic {name}");
            }
            TopicCommand::List { internal } => {
                let topics = admin
                    .list_topics(internal)
                    .await
                    .map_err(client_error("listing topics"))?;
                for topic in topics {
                    println!("{}\t{}", topic.name, topic.partition_count);
                }
            }
            TopicCommand::Describe { name } => {
                let topic = admin
                    .describe_topic(&name)
                    .await
                    .map_err(client_error(format!("describing topic {name}")))?;
                println!(
                    "topic\t{}\tpartitions\t{}",
                    topic.name,
                    topic.partitions.len()
                );
                for p in &topic.partitions {
                    println!(
                        "partition\t{}\tleader\t{}\tlog_start\t{}\tlog_end\t{}\treplicas\t{}\tisr\t{}",
                        p.partition,
                        p.leader_id,
                        p.log_start_offset,
                        p.log_end_offset,
                        join_ids(&p.replicas),
                        join_ids(&p.isr),
                    );
                }
                for c in &topic.configs {
                    println!("config\t{}\t{}", c.name, c.value.as_deref().unwrap_or(""));
                }
            }
            TopicCommand::Alter {
                name,
                configs,
                delete_configs,
            } => {
                if configs.is_empty() && delete_configs.is_empty() {
                    return Err(CliError::BadInput(
                        "nothing to change: give --config key=value or --delete-config key".into(),
                    ));
                }
                let mut changes: Vec<(String, Option<String>)> =
                    configs.into_iter().map(|(k, v)| (k, Some(v))).collect();
                changes.extend(delete_configs.into_iter().map(|k| (k, None)));
                admin
                    .alter_topic_configs(&name, changes)
                    .await
                    .map_err(client_error(format!("altering topic {name}")))?;
                eprintln!("altered topic {name}");
            }
            TopicCommand::Delete { name } => {
                admin
                    .delete_topic(&name)
                    .await
                    .map_err(client_error(format!("deleting topic {name}")))?;
                eprintln!("deleted topic {name}");
            }
        }
        Ok(())
    })
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
