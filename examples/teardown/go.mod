module example.com/teardown

go 1.26.8

require github.com/tcplab/tcplab v0.0.0

require (
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/gopacket/gopacket v1.7.7 // indirect
	github.com/klauspost/compress v1.20.5 // indirect
	github.com/pierrec/lz4/v4 v4.1.34 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// tcplab is not published as a module yet: a project of your own points
// this line at its clone of tcplab and runs go mod tidy (README, "Install").
// Once a version is published it drops the line (go mod edit -dropreplace)
// and runs go get github.com/tcplab/tcplab@latest.
replace github.com/tcplab/tcplab => ../..
