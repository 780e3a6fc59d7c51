#include "textflag.h"

// PRFM PLDL1KEEP asks for the line without waiting for it (see
// prefetch_amd64.s).

// func prefetchRx(umem []byte, descs []desc, start, n uint32)
TEXT ·prefetchRx(SB), NOSPLIT, $0-56
	MOVD  umem_base+0(FP), R0
	MOVD  descs_base+24(FP), R1
	MOVD  descs_len+32(FP), R5
	SUB   $1, R5
	MOVWU start+48(FP), R2
	MOVWU n+52(FP), R3
	CBZ   R3, done

loop:
	AND   R5, R2, R4
	LSL   $4, R4
	MOVD  (R1)(R4), R4
	ADD   R4, R0, R4
	PRFM  (R4), PLDL1KEEP
	ADDW  $1, R2
	SUB   $1, R3
	CBNZ  R3, loop

done:
	RET
