package ktrace

// The BPF object and its Go loader are generated from ktrace.c and
// committed, so that building tcplab needs no clang. After changing
// ktrace.c or vmlinux.h, regenerate both with clang, llvm and libbpf-dev
// from Debian (`go generate ./lab/ktrace`): the second step records the
// sources' hashes, the object's, and the versions of clang and bpf2go in
// source.sum, which TestGeneratedFresh checks.

//go:generate go tool bpf2go -target bpfel -type event ktrace ktrace.c -- -I. -O2 -g -Wall
//go:generate sh -c "sha256sum ktrace.c vmlinux.h ktrace_bpfel.o > source.sum && echo \"# $(clang --version | head -n 1)\" >> source.sum && echo \"# bpf2go $(go list -m -f {{.Version}} github.com/cilium/ebpf)\" >> source.sum"
