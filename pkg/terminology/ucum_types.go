package terminology

// ucumAtom is one row of the UCUM table (see ucum_atoms.go).
type ucumAtom struct {
	cs, ci string
	metric bool
}
