#include "textflag.h"

// Software prefetch of 64-byte lines: PREFETCHT0 asks for the line in
// every cache level and, unlike a load, retires at once, so a burst's
// misses are all in flight together instead of holding up the loads
// behind them.

// func prefetchBuckets(b []bucket, idx []uint32)
TEXT ·prefetchBuckets(SB), NOSPLIT, $0-48
	JMP ·prefetchLines(SB)

// func prefetchHots(h []hot, idx []uint32)
TEXT ·prefetchHots(SB), NOSPLIT, $0-48
	JMP ·prefetchLines(SB)

// func prefetchLines(base []byte, idx []uint32): line idx[i] of base for
// every i.
TEXT ·prefetchLines(SB), NOSPLIT, $0-48
	MOVQ base+0(FP), AX
	MOVQ idx+24(FP), SI
	MOVQ idx_len+32(FP), CX
	TESTQ CX, CX
	JZ done
loop:
	MOVL (SI), DX
	SHLQ $6, DX
	PREFETCHT0 (AX)(DX*1)
	ADDQ $4, SI
	DECQ CX
	JNZ loop
done:
	RET
