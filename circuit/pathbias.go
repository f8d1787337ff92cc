package circuit

// Path bias (spec/guards.md §5, after Tor's path-spec §7): a guard that
// answers but whose circuits then fail far more often than the network's
// may be dropping circuits it cannot deanonymise, to steer its clients
// onto paths it controls. Per guard, the client counts the circuits that
// got past the guard and those fully built, and the streams tried on
// circuits through it and those the exit answered.
const (
	// biasMinAttempts is how many circuits (or streams) a guard needs
	// before its rates are judged.
	biasMinAttempts = 20
	// Below biasWarnRate successes the client warns; below
	// biasDisableRate it stops using the guard.
	biasWarnRate    = 0.70
	biasDisableRate = 0.50
	// Past biasScaleAt attempts both counts are halved, so that old
	// observations fade.
	biasScaleAt = 300
)

// pathBias is a guard's path-bias record.
type pathBias struct {
	Circuits uint32 `json:"circuits"` // builds that got past the guard
	Built    uint32 `json:"built"`    // of those, built through every hop
	Streams  uint32 `json:"streams"`  // streams tried on its circuits
	Answered uint32 `json:"answered"` // of those, answered by the exit
	Warned   bool   `json:"warned"`   // a warning is out for the current rates
}

// biasVerdict is what a guard's rates call for.
type biasVerdict int

const (
	biasOK biasVerdict = iota
	biasWarn
	biasDisable
)

// noteCircuit counts a build that got past the guard; built says whether
// it completed.
func (b *pathBias) noteCircuit(built bool) {
	b.Circuits++
	if built {
		b.Built++
	}
	if b.Circuits > biasScaleAt {
		b.Circuits, b.Built = b.Circuits/2, b.Built/2
	}
}

// noteStream counts a stream tried on a circuit through the guard;
// answered says whether the exit answered it.
func (b *pathBias) noteStream(answered bool) {
	b.Streams++
	if answered {
		b.Answered++
	}
	if b.Streams > biasScaleAt {
		b.Streams, b.Answered = b.Streams/2, b.Answered/2
	}
}

// verdict judges the worse of the two rates.
func (b *pathBias) verdict() biasVerdict {
	v := judge(b.Built, b.Circuits)
	return max(v, judge(b.Answered, b.Streams))
}

func judge(ok, n uint32) biasVerdict {
	if n < biasMinAttempts {
		return biasOK
	}
	rate := float64(ok) / float64(n)
	switch {
	case rate < biasDisableRate:
		return biasDisable
	case rate < biasWarnRate:
		return biasWarn
	}
	return biasOK
}
