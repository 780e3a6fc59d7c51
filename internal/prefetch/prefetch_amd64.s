#include "textflag.h"

// func Line(p *uint64)
TEXT ·Line(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	RET

// func Slot(hot, cold *uint64)
TEXT ·Slot(SB), NOSPLIT, $0-16
	MOVQ hot+0(FP), AX
	MOVQ cold+8(FP), BX
	PREFETCHT0 (AX)
	PREFETCHT0 (BX)
	PREFETCHT0 55(BX)
	RET

// func Word(p *atomic.Uint64)
TEXT ·Word(SB), NOSPLIT, $0-8
	JMP ·Line(SB)
