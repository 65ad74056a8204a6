package main

import "io"

func explain(args []string, stdin io.Reader, stdout, stderr io.Writer) int { return exitUsage }
