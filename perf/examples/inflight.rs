use std::time::{Duration, Instant};
fn main() {
    let secs: f64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let path = "/sys/block/vda/inflight";
    let mut hist = [0u64; 40];
    let start = Instant::now();
    let mut samples = 0u64;
    let mut sum = 0u64;
    let mut busy = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let s = std::fs::read_to_string(path).unwrap();
        let mut it = s.split_whitespace();
        let r: u64 = it.next().unwrap().parse().unwrap();
        let w: u64 = it.next().unwrap().parse().unwrap();
        let n = (r + w) as usize;
        if n > 0 {
            hist[n.min(39)] += 1;
            sum += n as u64;
            busy += 1;
        } else {
            hist[0] += 1;
        }
        samples += 1;
        std::thread::sleep(Duration::from_micros(100));
    }
    let active = busy.max(1);
    println!(
        "samples {samples} busy {:.1}% mean depth when busy {:.2}",
        busy as f64 * 100.0 / samples as f64,
        sum as f64 / active as f64
    );
    let line: Vec<String> = hist
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| format!("{i}:{:.0}%", *c as f64 * 100.0 / samples as f64))
        .collect();
    println!("{}", line.join(" "));
}
