//! The DSP extension's SIMD instructions the [`super::dsp`] kernels are written in: inline
//! assembly on Arm cores that have them (feature `dsp`, which the host turns on for such
//! boards), and the same arithmetic in portable Rust everywhere else, so that the host tests
//! the kernels' logic and a firmware image tests the instructions.
//!
//! A `u32` here holds two signed halfwords (`lo`, `hi`) or four signed bytes.

#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod imp {
    use core::arch::asm;

    #[inline(always)]
    pub fn sxtb16(x: u32) -> u32 {
        let r;
        // SAFETY: register-only arithmetic.
        unsafe { asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack)) };
        r
    }

    #[inline(always)]
    pub fn sxtb16_ror8(x: u32) -> u32 {
        let r;
        // SAFETY: register-only arithmetic.
        unsafe { asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack)) };
        r
    }

    #[inline(always)]
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r;
        // SAFETY: register-only arithmetic (the Q flag it may set is never read).
        unsafe {
            asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc,
                 options(pure, nomem, nostack))
        };
        r
    }

    #[inline(always)]
    pub fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
        let r;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("smlabb {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc,
                 options(pure, nomem, nostack))
        };
        r
    }

    #[inline(always)]
    pub fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
        let r;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!("smlatt {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc,
                 options(pure, nomem, nostack))
        };
        r
    }

    #[inline(always)]
    pub fn sadd16(a: u32, b: u32) -> u32 {
        let r;
        // SAFETY: register-only arithmetic (the GE flags it sets are never read).
        unsafe {
            asm!("sadd16 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, options(pure, nomem, nostack))
        };
        r
    }

    /// Defines `$name`, [`super::windows_dot`] for one block of `$p` pixels: per group, one
    /// filter word widened to `(v0, v2)` and `(v1, v3)`, then per pixel one LDRD of its two
    /// widened words and two SMLADs into its accumulator (`$a`, the operand of `acc[$i]`). The
    /// first pixel's load is issued before the widening, so no SMLAD waits for a load.
    macro_rules! windows_dot_block {
        ($name:ident, $p:literal $(, $a:ident = $i:literal)*) => {
            #[doc = concat!("See [`super::windows_dot`] (", stringify!($p), " pixels in one block).")]
            #[inline(always)]
            pub fn $name(s: &[u32], w: &[i8], groups: usize) -> [i32; $p] {
                let mut acc = [0i32; $p];
                if groups > 0 {
                    // SAFETY: the caller checked that `s` holds `2 * $p` words and `w` 4 bytes
                    // per group; the loop reads exactly those (post-indexed), writes nothing
                    // but registers.
                    unsafe {
                        asm!(
                            "2:",
                            "ldr {v}, [{w}], #4",
                            "ldrd {xa}, {xb}, [{s}], #8",
                            "sxtb16 {v13}, {v}, ror #8",
                            "sxtb16 {v}, {v}",
                            "smlad {a0}, {xa}, {v}, {a0}",
                            "smlad {a0}, {xb}, {v13}, {a0}",
                            $(
                                "ldrd {xa}, {xb}, [{s}], #8",
                                concat!("smlad {", stringify!($a), "}, {xa}, {v}, {", stringify!($a), "}"),
                                concat!("smlad {", stringify!($a), "}, {xb}, {v13}, {", stringify!($a), "}"),
                            )*
                            "subs {n}, {n}, #1",
                            "bne 2b",
                            s = inout(reg) s.as_ptr() => _, w = inout(reg) w.as_ptr() => _, n = inout(reg) groups => _,
                            a0 = inout(reg) acc[0], $($a = inout(reg) acc[$i],)*
                            v = out(reg) _, v13 = out(reg) _, xa = out(reg) _, xb = out(reg) _,
                            options(nostack, readonly),
                        );
                    }
                }
                acc
            }
        };
    }

    windows_dot_block!(windows_dot1, 1);
    windows_dot_block!(windows_dot2, 2, a1 = 1);
    windows_dot_block!(windows_dot3, 3, a1 = 1, a2 = 2);
    windows_dot_block!(windows_dot4, 4, a1 = 1, a2 = 2, a3 = 3);
    windows_dot_block!(windows_dot5, 5, a1 = 1, a2 = 2, a3 = 3, a4 = 4);

    /// Assembly text of one depthwise tap of four channels: `$load` puts the tap's four input
    /// bytes in `{tx}`, its widened weights come from `{wp}` (post-incremented by `$step`
    /// bytes), and channels 0..4 accumulate in `{a0}`..`{a3}` (scratch `{t}`, `{wa}`, `{wb}`).
    macro_rules! tap4 {
        ($step:literal; $($load:literal),+) => {
            concat!(
                $($load, "\n",)+
                "ldrd {wa}, {wb}, [{wp}], #", $step, "\n",
                "sxtb16 {t}, {tx}\n",
                "smlabb {a0}, {t}, {wa}, {a0}\n",
                "smlatt {a2}, {t}, {wa}, {a2}\n",
                "sxtb16 {t}, {tx}, ror #8\n",
                "smlabb {a1}, {t}, {wb}, {a1}\n",
                "smlatt {a3}, {t}, {wb}, {a3}",
            )
        };
    }

    /// See [`super::taps4`].
    #[inline(always)]
    pub fn taps4(x: &[i8], c: usize, w: &[u32], n: usize, acc: [i32; 4]) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        if n > 0 {
            // SAFETY: the caller checked that `x` holds n taps `c` bytes apart (4 bytes each)
            // and `w` two words per tap; the loop reads exactly those.
            unsafe {
                asm!(
                    "2:",
                    tap4!(8; "ldr {tx}, [{xp}]", "add {xp}, {xp}, {c}"),
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    xp = inout(reg) x.as_ptr() => _, wp = inout(reg) w.as_ptr() => _, n = inout(reg) n => _,
                    c = in(reg) c,
                    a0 = inout(reg) a0, a1 = inout(reg) a1, a2 = inout(reg) a2, a3 = inout(reg) a3,
                    tx = out(reg) _, t = out(reg) _, wa = out(reg) _, wb = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        [a0, a1, a2, a3]
    }

    /// See [`super::taps4_rows3_raw`].
    #[inline(always)]
    pub unsafe fn taps4_rows3(
        x: *const i8,
        c: usize,
        in_row: usize,
        w: *const u32,
        rows: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        if rows > 0 {
            // SAFETY: the caller promises that `x` holds `rows` rows `in_row` apart of three
            // taps `c` apart (4 bytes each) and `w` six words per row; the loop reads those.
            unsafe {
                asm!(
                    "2:",
                    tap4!(8; "ldr {tx}, [{xp}]"),
                    tap4!(8; "ldr {tx}, [{xp}, {c}]", "add {xp}, {xp}, {c}"),
                    tap4!(8; "ldr {tx}, [{xp}, {c}]"),
                    "add {xp}, {xp}, {skip}",
                    "subs {rows}, {rows}, #1",
                    "bne 2b",
                    xp = inout(reg) x => _, wp = inout(reg) w => _, rows = inout(reg) rows => _,
                    c = in(reg) c, skip = in(reg) in_row - c,
                    a0 = inout(reg) a0, a1 = inout(reg) a1, a2 = inout(reg) a2, a3 = inout(reg) a3,
                    tx = out(reg) _, t = out(reg) _, wa = out(reg) _, wb = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        [a0, a1, a2, a3]
    }

    /// See [`super::taps4_rows2_raw`].
    #[inline(always)]
    pub unsafe fn taps4_rows2(
        x: *const i8,
        c: usize,
        in_row: usize,
        w: *const u32,
        rows: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        if rows > 0 {
            // SAFETY: the caller promises that `x` holds `rows` rows `in_row` apart of two
            // taps `c` apart (4 bytes each) and `w` six words per row (the first four read);
            // the loop reads those.
            unsafe {
                asm!(
                    "2:",
                    tap4!(8; "ldr {tx}, [{xp}]"),
                    tap4!(16; "ldr {tx}, [{xp}, {c}]"),
                    "add {xp}, {xp}, {in_row}",
                    "subs {rows}, {rows}, #1",
                    "bne 2b",
                    xp = inout(reg) x => _, wp = inout(reg) w => _, rows = inout(reg) rows => _,
                    c = in(reg) c, in_row = in(reg) in_row,
                    a0 = inout(reg) a0, a1 = inout(reg) a1, a2 = inout(reg) a2, a3 = inout(reg) a3,
                    tx = out(reg) _, t = out(reg) _, wa = out(reg) _, wb = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        [a0, a1, a2, a3]
    }

    /// See [`super::copy_words`].
    #[inline(always)]
    pub unsafe fn copy_words(d: *mut u32, x: *const i8, stride: usize, n: usize) -> *mut u32 {
        let mut d = d;
        if n > 0 {
            // SAFETY: the caller promises `n` words at `d` writable and `n` words `stride`
            // bytes apart from `x` readable; the loop touches only those.
            unsafe {
                asm!(
                    "2:",
                    "ldr {t}, [{x}]",
                    "add {x}, {x}, {stride}",
                    "str {t}, [{d}], #4",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    d = inout(reg) d, x = inout(reg) x => _, n = inout(reg) n => _, stride = in(reg) stride,
                    t = out(reg) _,
                    options(nostack),
                );
            }
        }
        d
    }

    /// See [`super::fill_words`].
    #[inline(always)]
    pub unsafe fn fill_words(d: *mut u32, v: u32, n: usize) -> *mut u32 {
        let mut d = d;
        if n > 0 {
            // SAFETY: the caller promises `n` words at `d` writable; the loop writes those.
            unsafe {
                asm!(
                    "2:",
                    "str {v}, [{d}], #4",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    d = inout(reg) d, n = inout(reg) n => _, v = in(reg) v,
                    options(nostack),
                );
            }
        }
        d
    }

    /// Assembly text of TFLM's requantization of `{x}` up to the shift (see
    /// [`super::requantize_high`]), left in `{lo}` (scratch `{hi}`).
    macro_rules! requantize_high {
        () => {
            concat!(
                "mov {lo}, #0x40000000\n",
                "mov {hi}, #0\n",
                "smlal {lo}, {hi}, {x}, {m}\n",
                "lsr {lo}, {lo}, #31\n",
                "orr {lo}, {lo}, {hi}, lsl #1\n",
                "and {hi}, {neg}, {lo}, asr #31\n",
                "add {lo}, {lo}, {round}\n",
                "add {lo}, {lo}, {hi}\n",
                "asr {lo}, {lo}, {e}",
            )
        };
    }

    /// Assembly text of [`super::requantize_x2_sat8`] of the doubled accumulator in operand
    /// `$x`, left in `{t}` (scratch `{ra}`; `{m}`, `{round}`, `{e}`, `{off}` as there).
    macro_rules! requantize_x2_sat8 {
        ($x:literal) => {
            concat!(
                "sub {ra}, {round}, {",
                $x,
                "}, lsr #31\n",
                "smmlar {t}, {",
                $x,
                "}, {m}, {ra}\n",
                "asr {t}, {t}, {e}\n",
                "add {t}, {t}, {off}\n",
                "ssat {t}, #8, {t}",
            )
        };
    }

    /// See [`super::requantize_sat8`].
    #[inline(always)]
    pub fn requantize_sat8(x: i32, multiplier: i32, e: u32, round: i32, negative: i32, offset: i32) -> i32 {
        let v: i32;
        // SAFETY: register-only arithmetic (the Q flag SSAT may set is never read).
        unsafe {
            asm!(
                requantize_high!(),
                "add {lo}, {lo}, {off}",
                "ssat {lo}, #8, {lo}",
                x = in(reg) x, m = in(reg) multiplier, e = in(reg) e, round = in(reg) round, neg = in(reg) negative,
                off = in(reg) offset, lo = out(reg) v, hi = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        v
    }

    /// See [`super::requantize_high`].
    #[inline(always)]
    pub fn requantize_high(x: i32, multiplier: i32, e: u32, round: i32, negative: i32) -> i32 {
        let v: i32;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!(
                requantize_high!(),
                x = in(reg) x, m = in(reg) multiplier, e = in(reg) e, round = in(reg) round, neg = in(reg) negative,
                lo = out(reg) v, hi = out(reg) _,
                options(pure, nomem, nostack),
            );
        }
        v
    }

    /// See [`super::requantize_x2_sat8`].
    #[inline(always)]
    pub fn requantize_x2_sat8(x2: i32, multiplier: i32, round: i32, e: u32, offset: i32) -> i32 {
        let v: i32;
        // SAFETY: register-only arithmetic (the Q flag SSAT may set is never read).
        unsafe {
            asm!(
                requantize_x2_sat8!("x"),
                x = in(reg) x2, m = in(reg) multiplier, round = in(reg) round, e = in(reg) e, off = in(reg) offset,
                ra = out(reg) _, t = out(reg) v,
                options(pure, nomem, nostack),
            );
        }
        v
    }

    /// See [`super::requantize2_store_raw`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn requantize2_store(
        a0: i32,
        a1: i32,
        bias2: i32,
        multiplier: i32,
        round: i32,
        e: u32,
        offset: i32,
        p0: *mut i8,
        p1: *mut i8,
    ) {
        // SAFETY: the caller promises that both bytes are writable; the block writes only
        // those.
        unsafe {
            asm!(
                "add {t}, {b2}, {a0}, lsl #1",
                requantize_x2_sat8!("t"),
                "strb {t}, [{p0}]",
                "add {t}, {b2}, {a1}, lsl #1",
                requantize_x2_sat8!("t"),
                "strb {t}, [{p1}]",
                a0 = in(reg) a0, a1 = in(reg) a1, b2 = in(reg) bias2, m = in(reg) multiplier,
                round = in(reg) round, e = in(reg) e, off = in(reg) offset, p0 = in(reg) p0, p1 = in(reg) p1,
                t = out(reg) _, ra = out(reg) _,
                options(nostack),
            );
        }
    }

    /// See [`super::requantize4_store_raw`].
    #[inline(always)]
    pub unsafe fn requantize4_store(acc: [i32; 4], params: *const i32, offset: i32, out: *mut i8) {
        let [a0, a1, a2, a3] = acc;
        // SAFETY: the caller promises 16 readable words at `params` and 4 writable bytes at
        // `out`; the block reads and writes only those.
        unsafe {
            asm!(
                // Each channel's `[m, round, e, 0]` is loaded just before its requantization.
                "ldrd {m}, {round}, [{p}], #8",
                "ldr {e}, [{p}], #8",
                requantize_x2_sat8!("a0"),
                "strb {t}, [{o}], #1",
                "ldrd {m}, {round}, [{p}], #8",
                "ldr {e}, [{p}], #8",
                requantize_x2_sat8!("a1"),
                "strb {t}, [{o}], #1",
                "ldrd {m}, {round}, [{p}], #8",
                "ldr {e}, [{p}], #8",
                requantize_x2_sat8!("a2"),
                "strb {t}, [{o}], #1",
                "ldrd {m}, {round}, [{p}], #8",
                "ldr {e}, [{p}], #8",
                requantize_x2_sat8!("a3"),
                "strb {t}, [{o}]",
                p = inout(reg) params => _, o = inout(reg) out => _, off = in(reg) offset,
                a0 = in(reg) a0, a1 = in(reg) a1, a2 = in(reg) a2, a3 = in(reg) a3,
                m = out(reg) _, round = out(reg) _, e = out(reg) _, ra = out(reg) _, t = out(reg) _,
                options(nostack),
            );
        }
    }
}

#[cfg(not(all(feature = "dsp", target_arch = "arm")))]
mod imp {
    #[inline(always)]
    fn halves(x: u32) -> (i32, i32) {
        (i32::from(x as u16 as i16), i32::from((x >> 16) as u16 as i16))
    }

    #[inline(always)]
    fn pack(lo: i32, hi: i32) -> u32 {
        u32::from(lo as u16) | u32::from(hi as u16) << 16
    }

    #[inline(always)]
    pub fn sxtb16(x: u32) -> u32 {
        pack(i32::from(x as u8 as i8), i32::from((x >> 16) as u8 as i8))
    }

    #[inline(always)]
    pub fn sxtb16_ror8(x: u32) -> u32 {
        sxtb16(x.rotate_right(8))
    }

    #[inline(always)]
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let ((a0, a1), (b0, b1)) = (halves(a), halves(b));
        acc.wrapping_add(a0 * b0).wrapping_add(a1 * b1)
    }

    #[inline(always)]
    pub fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add(halves(a).0 * halves(b).0)
    }

    #[inline(always)]
    pub fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add(halves(a).1 * halves(b).1)
    }

    #[inline(always)]
    pub fn sadd16(a: u32, b: u32) -> u32 {
        let ((a0, a1), (b0, b1)) = (halves(a), halves(b));
        pack(a0 + b0, a1 + b1)
    }

    pub fn taps4(x: &[i8], c: usize, w: &[u32], n: usize, acc: [i32; 4]) -> [i32; 4] {
        super::taps4_portable(x, c, w, n, acc)
    }
    /// `rows` rows of `taps` taps, rows `in_row` bytes and six weight words apart.
    #[inline(always)]
    unsafe fn taps4_rows(
        x: *const i8,
        c: usize,
        in_row: usize,
        w: *const u32,
        rows: usize,
        taps: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        if rows == 0 {
            return acc;
        }
        // SAFETY: the caller promises these lengths are readable.
        let (x, w) = unsafe {
            (
                core::slice::from_raw_parts(x, (rows - 1) * in_row + (taps - 1) * c + 4),
                core::slice::from_raw_parts(w, 6 * rows - 2 * (3 - taps)),
            )
        };
        let mut acc = acc;
        for r in 0..rows {
            acc = super::taps4_portable(&x[r * in_row..], c, &w[6 * r..], taps, acc);
        }
        acc
    }

    pub unsafe fn taps4_rows3(
        x: *const i8,
        c: usize,
        in_row: usize,
        w: *const u32,
        rows: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        // SAFETY: the caller's promise.
        unsafe { taps4_rows(x, c, in_row, w, rows, 3, acc) }
    }

    pub unsafe fn copy_words(d: *mut u32, x: *const i8, stride: usize, n: usize) -> *mut u32 {
        for i in 0..n {
            // SAFETY: the caller's promise.
            unsafe { d.add(i).write(x.add(i * stride).cast::<u32>().read_unaligned()) };
        }
        // SAFETY: one past the words written.
        unsafe { d.add(n) }
    }

    pub unsafe fn fill_words(d: *mut u32, v: u32, n: usize) -> *mut u32 {
        for i in 0..n {
            // SAFETY: the caller's promise.
            unsafe { d.add(i).write(v) };
        }
        // SAFETY: one past the words written.
        unsafe { d.add(n) }
    }

    pub unsafe fn taps4_rows2(
        x: *const i8,
        c: usize,
        in_row: usize,
        w: *const u32,
        rows: usize,
        acc: [i32; 4],
    ) -> [i32; 4] {
        // SAFETY: the caller's promise.
        unsafe { taps4_rows(x, c, in_row, w, rows, 2, acc) }
    }

    pub fn requantize_high(x: i32, multiplier: i32, e: u32, round: i32, negative: i32) -> i32 {
        let high = ((i64::from(x) * i64::from(multiplier) + (1 << 30)) >> 31) as i32;
        (high + round + ((high >> 31) & negative)) >> e
    }

    pub fn requantize_sat8(x: i32, multiplier: i32, e: u32, round: i32, negative: i32, offset: i32) -> i32 {
        (requantize_high(x, multiplier, e, round, negative) + offset).clamp(-128, 127)
    }
    pub fn requantize_x2_sat8(x2: i32, multiplier: i32, round: i32, e: u32, offset: i32) -> i32 {
        // SMMLAR: the high word of `ra * 2^32 + x2 * m`, rounded.
        let ra = round - (x2 as u32 >> 31) as i32;
        let high = ((i64::from(ra) << 32) + i64::from(x2) * i64::from(multiplier) + (1 << 31)) >> 32;
        ((high as i32 >> e) + offset).clamp(-128, 127)
    }

    #[allow(clippy::too_many_arguments)]
    pub unsafe fn requantize2_store(
        a0: i32,
        a1: i32,
        bias2: i32,
        multiplier: i32,
        round: i32,
        e: u32,
        offset: i32,
        p0: *mut i8,
        p1: *mut i8,
    ) {
        let v = |a: i32| requantize_x2_sat8(bias2.wrapping_add(a.wrapping_shl(1)), multiplier, round, e, offset) as i8;
        // SAFETY: the caller promises both bytes writable.
        unsafe {
            p0.write(v(a0));
            p1.write(v(a1));
        }
    }

    pub unsafe fn requantize4_store(acc: [i32; 4], params: *const i32, offset: i32, out: *mut i8) {
        // SAFETY: the caller promises 16 readable words and 4 writable bytes.
        let (params, out) =
            unsafe { (core::slice::from_raw_parts(params, 16), core::slice::from_raw_parts_mut(out, 4)) };
        for (k, (o, acc)) in out.iter_mut().zip(acc).enumerate() {
            let q = &params[4 * k..4 * k + 4];
            *o = requantize_x2_sat8(acc, q[0], q[1], q[2] as u32, offset) as i8;
        }
    }
}

/// SXTB16: bytes 0 and 2 of `x`, sign-extended into the low and high halfwords.
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    imp::sxtb16(x)
}

/// SXTB16 with ROR #8: bytes 1 and 3 of `x`, sign-extended into the low and high halfwords.
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    imp::sxtb16_ror8(x)
}

/// SMLAD: `acc + lo(a) * lo(b) + hi(a) * hi(b)`.
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    imp::smlad(a, b, acc)
}

/// SMLABB: `acc + lo(a) * lo(b)`.
#[inline(always)]
pub fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
    imp::smlabb(a, b, acc)
}

/// SMLATT: `acc + hi(a) * hi(b)`.
#[inline(always)]
pub fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
    imp::smlatt(a, b, acc)
}

/// SADD16: halfword-wise `a + b` (wrapping).
#[inline(always)]
pub fn sadd16(a: u32, b: u32) -> u32 {
    imp::sadd16(a, b)
}

/// Four bytes of `bytes` from `at`, as one little-endian word (one unaligned LDR on cores
/// with the DSP extension).
#[inline(always)]
pub fn word(bytes: &[i8], at: usize) -> u32 {
    let b = &bytes[at..at + 4];
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

/// `v` in both halfwords.
#[inline(always)]
pub const fn splat16(v: i32) -> u32 {
    (v as u16 as u32) | ((v as u16 as u32) << 16)
}

/// Pixels of one block of [`windows_dot`]'s layout: eight pixels are two blocks of four,
/// fewer are one block.
pub const fn block_pixels(p: usize) -> usize {
    if p == 8 {
        4
    } else {
        p
    }
}

/// Dot products of `P` output pixels' widened windows with one filter: `s` holds blocks of
/// [`block_pixels`] pixels one after another, in a block of `B` pixels per group of four
/// window values `2 * B` words (pixel `p`'s `(v0, v2)` and `(v1, v3)` halves at `2p`,
/// `2p + 1`); `w` holds the filter's four bytes per group; `groups` groups. `P` is 1 to 5
/// or 8.
///
/// # Panics
/// When `s` or `w` is shorter than `groups` needs (the kernels size them so).
#[inline(always)]
pub fn windows_dot<const P: usize>(s: &[u32], w: &[i8], groups: usize) -> [i32; P] {
    assert!(s.len() >= 2 * P * groups && w.len() >= 4 * groups, "windows_dot: short buffers");
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        let mut out = [0i32; P];
        match P {
            1 => out.copy_from_slice(&imp::windows_dot1(s, w, groups)),
            2 => out.copy_from_slice(&imp::windows_dot2(s, w, groups)),
            3 => out.copy_from_slice(&imp::windows_dot3(s, w, groups)),
            4 => out.copy_from_slice(&imp::windows_dot4(s, w, groups)),
            5 => out.copy_from_slice(&imp::windows_dot5(s, w, groups)),
            8 => {
                out[..4].copy_from_slice(&imp::windows_dot4(s, w, groups));
                out[4..].copy_from_slice(&imp::windows_dot4(&s[8 * groups..], w, groups));
            }
            _ => out = windows_dot_portable::<P>(s, w, groups),
        }
        out
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    windows_dot_portable::<P>(s, w, groups)
}

/// [`windows_dot`] in portable Rust.
#[inline(always)]
fn windows_dot_portable<const P: usize>(s: &[u32], w: &[i8], groups: usize) -> [i32; P] {
    let mut acc = [0i32; P];
    let b = block_pixels(P);
    for (block, acc) in acc.chunks_mut(b).enumerate() {
        let s = &s[block * 2 * b * groups..];
        for (group, v) in s.chunks_exact(2 * b).zip(w.chunks_exact(4)).take(groups) {
            let v = u32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8]);
            let (v02, v13) = (sxtb16(v), sxtb16_ror8(v));
            for (acc, x) in acc.iter_mut().zip(group.chunks_exact(2)) {
                *acc = smlad(x[1], v13, smlad(x[0], v02, *acc));
            }
        }
    }
    acc
}

/// Depthwise taps of four channels: for each of `n` taps, the word of four input bytes at
/// `x[t * c..]` times the tap's widened weights `w[2t]` (channels 0 and 2) and `w[2t + 1]`
/// (1 and 3), added to `acc` (channels 0..4).
///
/// # Panics
/// When `x` or `w` is shorter than `n` taps need.
#[inline(always)]
pub fn taps4(x: &[i8], c: usize, w: &[u32], n: usize, acc: [i32; 4]) -> [i32; 4] {
    assert!(n == 0 || ((n - 1) * c + 4 <= x.len() && 2 * n <= w.len()), "taps4: short buffers");
    imp::taps4(x, c, w, n, acc)
}

/// [`taps4`] in portable Rust.
#[inline(always)]
#[cfg_attr(all(feature = "dsp", target_arch = "arm"), allow(dead_code))]
fn taps4_portable(x: &[i8], c: usize, w: &[u32], n: usize, acc: [i32; 4]) -> [i32; 4] {
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    for t in 0..n {
        let v = word(x, t * c);
        let (x02, x13) = (sxtb16(v), sxtb16_ror8(v));
        a0 = smlabb(x02, w[2 * t], a0);
        a2 = smlatt(x02, w[2 * t], a2);
        a1 = smlabb(x13, w[2 * t + 1], a1);
        a3 = smlatt(x13, w[2 * t + 1], a3);
    }
    [a0, a1, a2, a3]
}

/// [`taps4`] over `rows` rows of a 3-wide window: row `r`'s taps start at `x[r * in_row..]`
/// and take the weights `w[6r..6r + 6]`.
///
/// # Panics
/// When `x` or `w` is shorter than the window needs.
#[inline(always)]
pub fn taps4_rows3(x: &[i8], c: usize, in_row: usize, w: &[u32], rows: usize, acc: [i32; 4]) -> [i32; 4] {
    assert!(
        rows == 0 || ((rows - 1) * in_row + 2 * c + 4 <= x.len() && 6 * rows <= w.len() && in_row >= c),
        "taps4_rows3: short buffers"
    );
    // SAFETY: asserted above.
    unsafe { imp::taps4_rows3(x.as_ptr(), c, in_row, w.as_ptr(), rows, acc) }
}

/// [`taps4_rows3`] through pointers, for loops that checked their bounds once.
///
/// # Safety
/// `(rows - 1) * in_row + 2 * c + 4` bytes must be readable from `x`, `6 * rows` words from
/// `w`, and `in_row >= c`.
#[inline(always)]
pub unsafe fn taps4_rows3_raw(
    x: *const i8,
    c: usize,
    in_row: usize,
    w: *const u32,
    rows: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    // SAFETY: the caller's promise.
    unsafe { imp::taps4_rows3(x, c, in_row, w, rows, acc) }
}

/// Copies `n` words, `stride` bytes apart from `x` (unaligned), to `d` one after another;
/// returns `d + n`. A plain loop: the compiler's unrolled copy costs more for the few words
/// of a depthwise window row.
///
/// # Safety
/// `n` words at `d` must be writable, and 4 bytes at each `x + i * stride` readable.
#[inline(always)]
pub unsafe fn copy_words(d: *mut u32, x: *const i8, stride: usize, n: usize) -> *mut u32 {
    // SAFETY: the caller's promise.
    unsafe { imp::copy_words(d, x, stride, n) }
}

/// Writes `v` to `n` words from `d`; returns `d + n` (a plain loop, as [`copy_words`]).
///
/// # Safety
/// `n` words at `d` must be writable.
#[inline(always)]
pub unsafe fn fill_words(d: *mut u32, v: u32, n: usize) -> *mut u32 {
    // SAFETY: the caller's promise.
    unsafe { imp::fill_words(d, v, n) }
}

/// [`taps4`] over `rows` rows of two taps, with the weights of a 3-wide window (six words
/// per row, the first four used): a window missing its first or last column (`w` then
/// starts at the row's second tap).
///
/// # Safety
/// `(rows - 1) * in_row + c + 4` bytes must be readable from `x`, and `6 * rows - 2` words
/// from `w`.
#[inline(always)]
pub unsafe fn taps4_rows2_raw(
    x: *const i8,
    c: usize,
    in_row: usize,
    w: *const u32,
    rows: usize,
    acc: [i32; 4],
) -> [i32; 4] {
    // SAFETY: the caller's promise.
    unsafe { imp::taps4_rows2(x, c, in_row, w, rows, acc) }
}

/// TFLM's requantization of `x` (already shifted left) by a Q31 `multiplier >= 0` and a right
/// shift `e`, for `|x| < 2^30`: the doubling high multiply `(x * m + 2^30) >> 31`, then the
/// rounding shift `(high + round + (negative & [high < 0])) >> e` with `round = 2^(e-1)` and
/// `negative = -1` when `e > 0` (both 0 when `e = 0`).
#[inline(always)]
pub fn requantize_high(x: i32, multiplier: i32, e: u32, round: i32, negative: i32) -> i32 {
    imp::requantize_high(x, multiplier, e, round, negative)
}

/// [`requantize_high`] plus `offset`, saturated to int8 (SSAT).
#[inline(always)]
pub fn requantize_sat8(x: i32, multiplier: i32, e: u32, round: i32, negative: i32, offset: i32) -> i32 {
    imp::requantize_sat8(x, multiplier, e, round, negative, offset)
}

/// TFLM's requantization (`MultiplyByQuantizedMultiplier`) of `x`, given doubled as
/// `x2 = 2x` with `|x| < 2^30`, by a Q31 `multiplier >= 0` and a right shift `e` in `1..=31`
/// (`round = 2^(e-1)`), plus `offset`, saturated to int8: `SMMLAR(x2, m, round - [x < 0]) >> e`.
///
/// Exact: with `h = (x * m + 2^30) >> 31` (the doubling high multiply), TFLM's rounding shift
/// is `(h + round - [h < 0]) >> e`, and `[h < 0]` may be read as `[x < 0]` (they differ only
/// where `h = 0`, which rounds to 0 either way). An integer added inside a floor passes
/// through it, so the two roundings are one shift by `31 + e` of
/// `x * m + 2^30 + (round - [x < 0]) * 2^31`: SMMLAR's `(ra * 2^32 + x2 * m + 2^31) >> 32`,
/// shifted by `e`.
#[inline(always)]
pub fn requantize_x2_sat8(x2: i32, multiplier: i32, round: i32, e: u32, offset: i32) -> i32 {
    imp::requantize_x2_sat8(x2, multiplier, round, e, offset)
}

/// [`requantize_x2_sat8`] of two accumulators of one channel, `2 * acc + bias2` (the bias
/// doubled), stored to `p0` and `p1`.
///
/// # Safety
/// A byte must be writable at `p0` and at `p1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn requantize2_store_raw(
    a0: i32,
    a1: i32,
    bias2: i32,
    multiplier: i32,
    round: i32,
    e: u32,
    offset: i32,
    p0: *mut i8,
    p1: *mut i8,
) {
    // SAFETY: the caller's promise.
    unsafe { imp::requantize2_store(a0, a1, bias2, multiplier, round, e, offset, p0, p1) }
}

/// [`requantize_x2_sat8`] of four doubled accumulators of four channels, stored to
/// `out[0..4]`: `params` holds per channel `[multiplier, round, e, unused]`.
///
/// # Safety
/// 16 words must be readable at `params`, 4 bytes writable at `out`.
#[inline(always)]
pub unsafe fn requantize4_store_raw(acc: [i32; 4], params: *const i32, offset: i32, out: *mut i8) {
    // SAFETY: the caller's promise.
    unsafe { imp::requantize4_store(acc, params, offset, out) }
}
