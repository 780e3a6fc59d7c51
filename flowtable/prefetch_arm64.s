#include "textflag.h"

// Software prefetch of 64-byte lines (see prefetch_amd64.s): PRFM
// PLDL1KEEP asks for the line without waiting for it.

// func prefetchBuckets(b []bucket, idx []uint32)
TEXT ·prefetchBuckets(SB), NOSPLIT, $0-48
	JMP ·prefetchLines(SB)

// func prefetchHots(h []hot, idx []uint32)
TEXT ·prefetchHots(SB), NOSPLIT, $0-48
	JMP ·prefetchLines(SB)

// func prefetchLines(base []byte, idx []uint32): line idx[i] of base for
// every i.
TEXT ·prefetchLines(SB), NOSPLIT, $0-48
	MOVD base+0(FP), R0
	MOVD idx+24(FP), R1
	MOVD idx_len+32(FP), R2
	CBZ  R2, done

loop:
	MOVWU.P 4(R1), R3
	ADD     R3<<6, R0, R4
	PRFM    (R4), PLDL1KEEP
	SUB     $1, R2
	CBNZ    R2, loop

done:
	RET
