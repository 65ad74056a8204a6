// Package doccheck holds the test that keeps the repository's documentation
// honest: every Markdown document and Go comment of the module may name only
// files and identifiers that exist, and none may cite a file outside the
// repository. It has no API; `go test ./...` runs the check.
//
// What is checked (doccheck_test.go):
//
//   - relative Markdown links resolve to a file or directory of the
//     repository, and a fragment to a heading or anchor of the target
//     document;
//   - a file name in backticks (in Markdown or a Go comment), and a Go
//     file name in a Go comment, names a file of the repository: a path
//     relative to the document, to the repository root or, for a bare
//     name, any file of that name. Paths whose first directory is not one
//     of the repository's (a kernel or gVisor source path) are not checked;
//   - an identifier in backticks or in a doc link of the form pkg.Name,
//     Type.Member or pkg.Type.Member, whose first part is a package or
//     exported type name of the module and whose name is exported, names a
//     declaration, method or field that exists. Other names (the standard
//     library's, the kernel's, C's, local variables') are not checked;
//   - no text file cites the reference notes or absolute paths of the
//     machine the project was started on.
//
// A problem is reported at the first line of the paragraph it is in.
package doccheck
