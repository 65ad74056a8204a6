package fsm

// The tables in zz_profiles.go and the documents under docs/ are generated
// from spec/*.spec.
//go:generate go run ../internal/cmd/specgen -root ..
