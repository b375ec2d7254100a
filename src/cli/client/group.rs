//! `quiver group list|describe|reset-offsets|delete`.
//!
//! Output is one item per line, tab-separated, like `quiver topic`:
//! - `list`: `<group>\t<state>\t<members>`;
//! - `describe`: a `group` line (`group\t<id>\tstate\t<s>\tepoch\t<n>\tassignor\t<a>\tmembers\t<n>`),
//!   one `member` line per member (`member\t<id>\tclient\t<client id>\tepoch\t<n>\tassigned\t<t:p,p;...>`),
//!   then one `partition` line per partition of the topics the group subscribes or commits to
//!   (`partition\t<topic>\t<p>\tcommitted\t<o|->\tlog_end\t<o>\tlag\t<n>\towner\t<member|->`);
//! - `reset-offsets`: one `<topic>\t<p>\t<current|->\t<new>` line per partition, then (without
//!   `--execute`) a note on stderr that nothing was changed.

use clap::{Args, Subcommand};
use quiver_transport::client::{Admin, TopicPartition};
use quiver_transport::protocol::{GroupTopicPartitions, OffsetSpec};

use super::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// `quiver group <command>`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List consumer groups: id, state, live members.
    List,
    /// A group's members and assignments, and per partition its committed offset, log end and
    /// lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Set a group's committed offsets for a topic (the group must have no live members).
    /// Prints the plan; changes nothing without --execute.
    ResetOffsets(ResetArgs),
    /// Delete a group without live members, with its committed offsets.
    Delete {
        /// Group id.
        group: String,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
struct ResetArgs {
    /// Group id.
    group: String,
    /// The topic whose offsets to reset (every partition).
    #[arg(long)]
    topic: String,
    /// To each partition's log start.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's log end (skip everything retained).
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to each partition's log start and end).
    #[arg(long)]
    to_offset: Option<i64>,
    /// To the first record at or after this time: RFC 3339 (`2026-11-22T10:00:00Z`,
    /// `2026-11-22T10:00:00.5+01:00`) or a date (`2026-11-22`, midnight UTC).
    #[arg(long)]
    to_datetime: Option<String>,
    /// Move the committed offset by N (negative: back), clamped to the log; partitions without
    /// a committed offset shift from the log end.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Apply the plan (otherwise only print it).
    #[arg(long)]
    execute: bool,
}

fn assignment_text(assignment: &[GroupTopicPartitions]) -> String {
    let parts: Vec<String> = assignment
        .iter()
        .map(|tp| {
            let ps: Vec<String> = tp.partitions.iter().map(i32::to_string).collect();
            format!("{}:{}", tp.topic, ps.join(","))
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(";")
    }
}

/// Runs `quiver group`.
pub fn run(args: GroupArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let admin = Admin::connect(config)
            .await
            .map_err(client_error("connecting"))?;
        match args.command {
            GroupCommand::List => {
                let groups = admin
                    .list_groups()
                    .await
                    .map_err(client_error("listing groups"))?;
                for g in groups {
                    println!("{}\t{}\t{}", g.group_id, g.state, g.member_count);
                }
            }
            GroupCommand::Describe { group } => {
                let d = admin
                    .describe_group(&group)
                    .await
                    .map_err(client_error(format!("describing group {group}")))?;
                println!(
                    "group\t{}\tstate\t{}\tepoch\t{}\tassignor\t{}\tmembers\t{}",
                    d.group_id,
                    d.state,
                    d.group_epoch,
                    d.assignor,
                    d.members.len()
                );
                for m in &d.members {
                    println!(
                        "member\t{}\tclient\t{}\tepoch\t{}\tassigned\t{}",
                        m.member_id,
                        m.client_id,
                        m.member_epoch,
                        assignment_text(&m.assignment)
                    );
                }
                let lag = admin
                    .group_lag(&group, None)
                    .await
                    .map_err(client_error(format!("computing the lag of group {group}")))?;
                for p in lag {
                    println!(
                        "partition\t{}\t{}\tcommitted\t{}\tlog_end\t{}\tlag\t{}\towner\t{}",
                        p.partition.topic,
                        p.partition.partition,
                        p.committed.map_or("-".into(), |c| c.to_string()),
                        p.log_end,
                        p.lag,
                        p.owner.as_deref().unwrap_or("-")
                    );
                }
            }
            GroupCommand::ResetOffsets(reset) => reset_offsets(&admin, reset).await?,
            GroupCommand::Delete { group } => {
                admin
                    .delete_group(&group)
                    .await
                    .map_err(client_error(format!("deleting group {group}")))?;
                eprintln!("deleted group {group}");
            }
        }
        Ok(())
    })
}

async fn reset_offsets(admin: &Admin, args: ResetArgs) -> Result<(), CliError> {
    let group = &args.group;
    let lag = admin
        .group_lag(group, Some(std::slice::from_ref(&args.topic)))
        .await
        .map_err(client_error(format!(
            "reading the offsets of group {group}"
        )))?;
    if lag.is_empty() {
        return Err(CliError::BadInput(format!(
            "topic '{}' does not exist",
            args.topic
        )));
    }
    let by_time = match &args.to_datetime {
        Some(text) => {
            let ms = parse_datetime_ms(text).ok_or_else(|| {
                CliError::BadInput(format!(
                    "--to-datetime {text:?} is not RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)"
                ))
            })?;
            let specs: Vec<(TopicPartition, OffsetSpec)> = lag
                .iter()
                .map(|p| (p.partition.clone(), OffsetSpec::Timestamp(ms)))
                .collect();
            Some(
                admin
                    .list_offsets(&specs)
                    .await
                    .map_err(client_error("looking up offsets by time"))?,
            )
        }
        None => None,
    };
    let mut plan = Vec::with_capacity(lag.len());
    for p in &lag {
        let clamp = |o: i64| o.clamp(p.log_start, p.log_end);
        let new = if args.to_earliest {
            p.log_start
        } else if args.to_latest {
            p.log_end
        } else if let Some(o) = args.to_offset {
            clamp(o)
        } else if let Some(n) = args.shift_by {
            clamp(p.committed.unwrap_or(p.log_end).saturating_add(n))
        } else {
            let found = by_time
                .as_ref()
                .and_then(|m| m.get(&p.partition))
                .map_or(p.log_end, |o| o.offset);
            clamp(found)
        };
        println!(
            "{}\t{}\t{}\t{}",
            p.partition.topic,
            p.partition.partition,
            p.committed.map_or("-".into(), |c| c.to_string()),
            new
        );
        plan.push((p.partition.clone(), new));
    }
    if !args.execute {
        eprintln!("dry run: nothing changed; add --execute to apply");
        return Ok(());
    }
    match admin.describe_group(group).await {
        Ok(d) if !d.members.is_empty() => {
            return Err(CliError::BadInput(format!(
                "group {group} has {} live members; stop its consumers first (offsets unchanged)",
                d.members.len()
            )))
        }
        _ => {}
    }
    admin
        .alter_group_offsets(group, &plan)
        .await
        .map_err(client_error(format!(
            "resetting the offsets of group {group}"
        )))?;
    eprintln!(
        "reset {} partitions of {} for group {group}",
        plan.len(),
        args.topic
    );
    Ok(())
}

/// Milliseconds since the Unix epoch of an RFC 3339 time or a `YYYY-MM-DD` date (UTC).
fn parse_datetime_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_at(text.len().min(10));
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if rest.is_empty() {
        return Some(days * 86_400_000);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // hh:mm:ss[.frac](Z|±hh:mm)
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => return None,
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (clock, None),
    };
    let mut t = hms.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let s: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let millis = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let f = format!("{f:0<3}");
            f[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let offset_min = match zone {
        "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om) = z[1..].split_once(':')?;
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    Some(((days * 24 + h) * 60 + m - offset_min) * 60_000 + s * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_datetime_ms;

    #[test]
    fn datetimes_parse() {
        assert_eq!(parse_datetime_ms("1970-01-01"), Some(0));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Some(1000));
        // 2026-11-22T10:00:00Z = 1795341600 s (days 20414 since the epoch).
        assert_eq!(
            parse_datetime_ms("2026-11-22T10:00:00Z"),
            Some(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22T11:00:00.250+01:00"),
            Some(1_795_341_600_250)
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T00:00:00-00:30"),
            Some(951_784_200_000)
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-11-22T25:00:00Z",
            "2026-11-22T10:00:00",
            "yesterday",
        ] {
            assert_eq!(parse_datetime_ms(bad), None, "{bad}");
        }
    }
}
