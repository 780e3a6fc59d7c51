#include "textflag.h"

// func Line(p *uint64)
TEXT ·Line(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	RET

// func Line32(p *uint32)
TEXT ·Line32(SB), NOSPLIT, $0-8
	JMP ·Line(SB)
