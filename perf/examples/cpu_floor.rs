use quiver_engine::batch::RecordBatch;
use quiver_perf::storage::batches::Batches;
use std::time::Instant;
fn main() {
    let b = Batches::build(1 << 20, 2048, 0);
    for _ in 0..3 {
        let fresh = b.fresh();
        let t = Instant::now();
        let mut n = 0usize;
        for x in &fresh {
            n += RecordBatch::parse(x).unwrap().records_count() as usize;
        }
        let crc = t.elapsed();
        let mut dst = vec![0u8; 1 << 20];
        let t = Instant::now();
        for x in &fresh {
            dst.copy_from_slice(&x[..]);
            std::hint::black_box(&dst);
        }
        let cp = t.elapsed();
        let t = Instant::now();
        drop(fresh);
        let dr = t.elapsed();
        println!(
            "n={n} parse+crc {:?} ({:.1} GB/s) copy {:?} ({:.1} GB/s) drop {:?}",
            crc,
            2.147 / crc.as_secs_f64(),
            cp,
            2.147 / cp.as_secs_f64(),
            dr
        );
    }
}
