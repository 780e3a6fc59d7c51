#include "textflag.h"

// func Line(p *uint64)
TEXT ·Line(SB), NOSPLIT, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func Slot(hot, cold *uint64)
TEXT ·Slot(SB), NOSPLIT, $0-16
	MOVD hot+0(FP), R0
	MOVD cold+8(FP), R1
	PRFM (R0), PLDL1KEEP
	PRFM (R1), PLDL1KEEP
	ADD $55, R1
	PRFM (R1), PLDL1KEEP
	RET

// func Word(p *atomic.Uint64)
TEXT ·Word(SB), NOSPLIT, $0-8
	JMP ·Line(SB)
