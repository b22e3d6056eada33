//! Which Kafka offsets a batch covers, and the offsets to commit once it is durable.
//!
//! One thread consumes every assigned partition in order and batches are inserted and
//! committed in the order they were filled, so per partition a batch covers one run of
//! offsets `first..=last` that starts right after the previous batch's run. (Runs may have holes — transaction markers
//! under `read_committed` take offsets — but no record is ever left between two batches.)
//! Committing `last + 1` after the batch's insert therefore never moves a committed offset
//! past a record that is not yet in ClickHouse or the dead-letter topic.

use std::collections::BTreeMap;

use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

/// The offset run of one partition inside a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRun {
    /// First offset of the partition in the batch.
    pub first: i64,
    /// Last (highest) offset of the partition in the batch.
    pub last: i64,
}

/// Offset runs of a batch, per topic and partition (nested so that recording a record
/// needs no allocation).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOffsets {
    runs: BTreeMap<String, BTreeMap<i32, OffsetRun>>,
}

impl BatchOffsets {
    /// Record that the record at `offset` of `topic`/`partition` is part of the batch.
    /// Offsets of one partition must arrive in increasing order (the consumer guarantees it);
    /// an offset at or below the run's last one is ignored (a re-delivery after a seek).
    pub fn record(&mut self, topic: &str, partition: i32, offset: i64) {
        let partitions = match self.runs.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.runs.entry(topic.to_string()).or_default(),
        };
        let run = partitions.entry(partition).or_insert(OffsetRun {
            first: offset,
            last: offset,
        });
        run.last = run.last.max(offset);
    }

    /// Whether the batch covers no record at all.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The run of one partition, if the batch has records of it.
    pub fn run(&self, topic: &str, partition: i32) -> Option<OffsetRun> {
        self.runs.get(topic)?.get(&partition).copied()
    }

    /// Every run, ordered by topic and partition.
    fn runs(&self) -> impl Iterator<Item = (&str, i32, OffsetRun)> {
        self.runs.iter().flat_map(|(topic, partitions)| {
            partitions
                .iter()
                .map(move |(partition, run)| (topic.as_str(), *partition, *run))
        })
    }

    /// What to commit once the batch is durable: for each partition, the offset after the
    /// highest one in the batch (Kafka's committed offset is the next record to read).
    pub fn commit_list(&self) -> KafkaResult<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for (topic, partition, run) in self.runs() {
            list.add_partition_offset(topic, partition, Offset::Offset(run.last + 1))?;
        }
        Ok(list)
    }

    /// A deterministic name of the batch's offset range, e.g. `t/0:10-13,t/1:3-3`: the same
    /// batch retried gets the same token (for ClickHouse's `insert_deduplication_token`).
    pub fn token(&self) -> String {
        let mut token = String::new();
        for (topic, partition, run) in self.runs() {
            if !token.is_empty() {
                token.push(',');
            }
            token.push_str(&format!("{topic}/{partition}:{}-{}", run.first, run.last));
        }
        token
    }

    /// Forget everything (after the commit).
    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commits_the_offset_after_the_highest_per_partition() {
        let mut offsets = BatchOffsets::default();
        offsets.record("t", 0, 10);
        offsets.record("t", 1, 3);
        offsets.record("t", 0, 11);
        offsets.record("t", 0, 13); // a transaction marker took 12
        let list = offsets.commit_list().expect("list");
        let committed: Vec<(i32, Offset)> = list
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(
            committed,
            vec![(0, Offset::Offset(14)), (1, Offset::Offset(4))]
        );
        assert_eq!(
            offsets.run("t", 0),
            Some(OffsetRun {
                first: 10,
                last: 13
            })
        );
        assert_eq!(offsets.token(), "t/0:10-13,t/1:3-3");
        offsets.clear();
        assert!(offsets.is_empty());
    }

    proptest! {
        /// Whatever the interleaving of partitions, the committed offset of each partition is
        /// one past the highest offset consumed from it, and the run starts at the first one.
        #[test]
        fn commit_is_one_past_the_highest(
            records in proptest::collection::vec((0..4i32, 1..5i64), 1..200)
        ) {
            let mut next = [0i64; 4];
            let mut offsets = BatchOffsets::default();
            let mut first = [None::<i64>; 4];
            for (partition, step) in records {
                let slot = partition as usize;
                next[slot] += step;
                first[slot].get_or_insert(next[slot]);
                offsets.record("t", partition, next[slot]);
            }
            let list = offsets.commit_list().expect("list");
            for element in list.elements() {
                let slot = element.partition() as usize;
                prop_assert_eq!(element.offset(), Offset::Offset(next[slot] + 1));
                let run = offsets.run("t", element.partition()).expect("run");
                prop_assert_eq!(Some(run.first), first[slot]);
            }
            prop_assert_eq!(list.count(), first.iter().filter(|f| f.is_some()).count());
        }
    }
}
