package main

import "io"

func specCmd(args []string, stdout, stderr io.Writer) int { return exitUsage }
