//! `storage-bench`: the partition log's append and cold read throughput against fio.
//! See `quiver_perf::storage`; `hack/bench-storage` installs fio, builds and runs it.
//!
//! Prints progress on stderr, then the table and the fio command lines on stdout, and ends
//! with one line: `append_mib_s=.. fio_write_mib_s=.. append_ratio=.. read_mib_s=..
//! fio_read_mib_s=.. read_ratio=..` for the 1 MiB batch, flush=never case.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use quiver_perf::storage::{clean_up, run, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    HUGE_DMA_ARENAS.store(options.io_memory_thp, Ordering::Relaxed);
    let result = run(&options);
    clean_up(&options.dir);
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("storage-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    match report.save_json(&options.json) {
        Ok(()) => println!("\nJSON report: {}", options.json.display()),
        Err(e) => {
            eprintln!("storage-bench: cannot write the JSON report: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{}", report.last_line());
    ExitCode::SUCCESS
}

/// `--io-memory-thp`: asks for transparent huge pages on page-aligned allocations of at least
/// [`HUGE_ARENA_BYTES_MIN`]: in this process that is glommio's registered io_memory arena (its
/// DMA buffers), which it allocates with the global allocator. Nothing else is that large and
/// page-aligned here (batches and read buffers are byte-aligned).
static HUGE_DMA_ARENAS: AtomicBool = AtomicBool::new(false);
const HUGE_ARENA_BYTES_MIN: usize = 16 << 20;
const HUGE_PAGE_BYTES: usize = 2 << 20;
const PAGE_BYTES: usize = 4096;

struct Allocator;

// SAFETY: every call is forwarded to `System`; `madvise(MADV_HUGEPAGE)` only changes how the
// kernel backs pages inside a block `System` just returned, never its contents or extent.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; forwarded as is.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null()
            && layout.align() == PAGE_BYTES
            && layout.size() >= HUGE_ARENA_BYTES_MIN
            && HUGE_DMA_ARENAS.load(Ordering::Relaxed)
        {
            let start = (block as usize).next_multiple_of(HUGE_PAGE_BYTES);
            let end = (block as usize + layout.size()) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
            if end > start {
                // SAFETY: [start, end) lies inside the block just allocated; the advice is a
                // hint (failure is harmless and ignored).
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller, who upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; zeroed allocations are never the DMA arena.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller, who upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Allocator = Allocator;
