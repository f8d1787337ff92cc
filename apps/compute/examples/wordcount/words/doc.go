// Package words counts words. It is the pure function behind the wordcount
// example module, kept apart so the same code runs natively (benchmarks,
// tests) and inside WebAssembly.
package words
