//! Render must not touch the heap: a counting global allocator, armed only on the test's own
//! thread (so other test threads and the harness don't interfere), checks every render path.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
#![allow(unsafe_code)] // GlobalAlloc is an unsafe trait; the crate denies unsafe elsewhere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use latent_lab::audio::engine::{Engine, MAX_PARTIALS, Partial, VoiceParams};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: never panic inside the allocator (e.g. during thread teardown).
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap operations (alloc, realloc, dealloc) performed on this thread while running `f`.
fn heap_ops<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (COUNT.with(|c| c.get()), r)
}

#[test]
fn allocator_is_counting() {
    let (n, v) = heap_ops(|| vec![1u8; 10]);
    assert!(n >= 1, "the counting allocator must see a Vec allocation");
    drop(v);
}

#[test]
fn render_never_touches_the_heap() {
    let (mut engine, mut ctl) = Engine::new(48_000);
    // All buffers and inputs prepared up front (the UI side may allocate; render may not).
    let mut out_f32 = vec![0.0f32; 2 * 256];
    let mut out_i16 = vec![0i16; 2 * 256];
    let mut out_u16 = vec![0u16; 2 * 512];
    let mut big = vec![0.0f32; 6 * 3000 + 1];
    let clip_a = vec![0.2f32; 48_000];
    let clip_b = vec![-0.2f32; 10_000];
    let full: Vec<Partial> = (0..MAX_PARTIALS)
        .map(|k| Partial {
            freq_hz: 50.0 + 37.0 * k as f32,
            amp: 0.01,
        })
        .collect();
    let voices: Vec<VoiceParams> = (0..50)
        .map(|k| VoiceParams::from_partials(&full[..(k % MAX_PARTIALS) + 1], 1.0))
        .collect();

    let mut total = 0;
    for (k, v) in voices.iter().enumerate() {
        ctl.set_voice(v); // UI side, outside the measurement
        if k == 10 {
            ctl.play_clip(&clip_a);
        }
        if k == 20 {
            ctl.play_clip(&clip_b); // flush path
        }
        if k == 30 {
            ctl.stop_clip();
        }
        if k == 40 {
            ctl.silence();
        }
        let (n, ()) = heap_ops(|| {
            engine.render(&mut out_f32, 2);
            engine.render_as(&mut out_i16, 2);
            engine.render_as(&mut out_u16, 1);
            engine.render(&mut big, 6); // > internal chunk, odd tail
            engine.render(&mut [], 1);
        });
        total += n;
    }
    assert_eq!(total, 0, "render performed {total} heap operations");
    assert!(out_f32.iter().all(|x| x.is_finite()));
}
