package terminology

// The data files and ucum_atoms.go are written by internal/gen from pinned
// npm packages; it needs npm and the registry, so only run it to update
// the data (see docs/formats/terminology.md).
//go:generate go run ./internal/gen
