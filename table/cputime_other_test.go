//go:build !unix

package table

func processCPU() int64 { return 0 }
