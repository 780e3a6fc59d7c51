#include "textflag.h"

// func Line(p *uint64)
TEXT ·Line(SB), NOSPLIT, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func Line32(p *uint32)
TEXT ·Line32(SB), NOSPLIT, $0-8
	JMP ·Line(SB)
