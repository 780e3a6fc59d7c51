#include "textflag.h"

// PREFETCHT0 asks for the line in every cache level and, unlike a load,
// retires at once, so a burst's misses are all in flight together.

// func prefetchRx(umem []byte, descs []desc, start, n uint32)
TEXT ·prefetchRx(SB), NOSPLIT, $0-56
	MOVQ umem_base+0(FP), AX
	MOVQ descs_base+24(FP), SI
	MOVQ descs_len+32(FP), R8
	DECQ R8
	MOVL start+48(FP), BX
	MOVL n+52(FP), CX
	TESTL CX, CX
	JZ done
loop:
	MOVQ BX, DX
	ANDQ R8, DX
	SHLQ $4, DX
	MOVQ (SI)(DX*1), DX
	PREFETCHT0 (AX)(DX*1)
	INCL BX
	DECL CX
	JNZ loop
done:
	RET
