package pkt

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/testenv"
	"github.com/tcplab/tcplab/lab/netns"
	"github.com/tcplab/tcplab/lab/scripted"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFastOpenCookiePublished: the cookies packetdrill's runners define
// with -D (run_all.py, the kernel selftests' ksft_runner.sh) for their
// addresses, which the kernel gives there.
func TestFastOpenCookiePublished(t *testing.T) {
	tests := []struct {
		name, src, dst, want string
	}{
		{"TFO_COOKIE", "192.0.2.1", "192.168.0.1", "3021b9d889017eeb"},
		{"TFO_COOKIE_ZERO", "192.0.2.1", "192.168.0.1", "b7c12350a90dc8f5"},
		{"TFO_COOKIE", "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "c1d1e9742a47a9bc"},
		{"TFO_COOKIE_ZERO", "fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1", "82af1a8f9a205c34"},
		// A mapped address is its IPv4 address on the wire.
		{"TFO_COOKIE", "::ffff:192.0.2.1", "::ffff:192.168.0.1", "3021b9d889017eeb"},
	}
	for _, tt := range tests {
		got := hex.EncodeToString(namedKey(namedCookies[tt.name]).Cookie(netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)))
		if got != tt.want {
			t.Errorf("%s from %s to %s = %s, want %s", tt.name, tt.src, tt.dst, got, tt.want)
		}
	}
}

// TestFastOpenCookieKernel: the cookie is the one the kernel gives. A
// Fast Open server in a namespace of its own, with a key set by the
// sysctl or by setsockopt, answers a client's cookie request on lo; the
// cookie of its SYN/ACK, read off the wire, is FastOpenKey.Cookie's for the
// key and addresses, IPv4 and IPv6.
func TestFastOpenCookieKernel(t *testing.T) {
	if !testenv.InNamespace(t, time.Minute) {
		return
	}
	host, err := netns.NewHost("tfo")
	if err != nil {
		testenv.SkipOrFail(t, "cannot make a network namespace: "+err.Error(), "run as root")
		return
	}
	defer host.Close()
	tests := []struct {
		name     string
		src, dst string
		sysctl   string // the key as net.ipv4.tcp_fastopen_key's text
		sockopt  []byte // or as TCP_FASTOPEN_KEY's bytes
	}{
		{"packetdrill's key", "192.0.2.1", "192.168.0.1", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4", nil},
		{"zero key", "192.0.2.1", "192.168.0.1", "0-0-0-0", nil},
		{"words not palindromes", "10.1.2.3", "10.9.8.7", "01234567-89abcdef-fedcba98-76543210", nil},
		{"setsockopt bytes", "10.1.2.3", "10.9.8.7", "", []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f")},
		{"ipv6 packetdrill's key", "fd3d:fa7b:d17d::2", "fd3d:fa7b:d17d::1", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4", nil},
		{"ipv6 setsockopt bytes", "2001:db8::5", "2001:db8:1::6", "", []byte("0123456789abcdef")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
			var key scripted.FastOpenKey
			if tt.sockopt != nil {
				copy(key[:], tt.sockopt)
			} else {
				var w [4]uint32
				if _, err := fmt.Sscanf(tt.sysctl, "%x-%x-%x-%x", &w[0], &w[1], &w[2], &w[3]); err != nil {
					t.Fatal(err)
				}
				key = namedKey(w)
			}
			var got []byte
			err := host.Do(func() error {
				var err error
				got, err = kernelCookie(src, dst, uint16(9000+i), tt.sysctl, tt.sockopt)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := key.Cookie(src, dst); hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("the kernel's cookie from %s to %s is %x, FastOpenKey.Cookie's %x", src, dst, got, want)
			}
		})
	}
}

// kernelCookie runs, in the calling thread's namespace, a Fast Open
// server at dst (its key the sysctl's text, or sockopt's bytes) and a
// client at src that asks it for a cookie, and returns the cookie of the
// server's SYN/ACK as lo carried it.
func kernelCookie(src, dst netip.Addr, port uint16, sysctl string, sockopt []byte) ([]byte, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	for _, a := range []netip.Addr{src, dst} {
		pfx := netip.PrefixFrom(a, a.BitLen())
		addr, _ := netlink.ParseAddr(pfx.String())
		addr.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrReplace(lo, addr); err != nil {
			return nil, fmt.Errorf("add %s to lo: %w", pfx, err)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_fastopen", []byte("3"), 0); err != nil {
		return nil, err
	}
	if sysctl != "" {
		if err := os.WriteFile("/proc/sys/net/ipv4/tcp_fastopen_key", []byte(sysctl), 0); err != nil {
			return nil, err
		}
	}
	// Frames on lo, to read the SYN/ACK off.
	pk, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, err
	}
	defer unix.Close(pk)
	if err := unix.Bind(pk, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lo.Attrs().Index}); err != nil {
		return nil, err
	}
	if err := unix.SetsockoptTimeval(pk, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		return nil, err
	}
	family := unix.AF_INET
	if src.Is6() {
		family = unix.AF_INET6
	}
	sa := func(a netip.Addr, port int) unix.Sockaddr {
		if a.Is4() {
			return &unix.SockaddrInet4{Addr: a.As4(), Port: port}
		}
		return &unix.SockaddrInet6{Addr: a.As16(), Port: port}
	}
	ls, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ls)
	if sockopt != nil {
		if err := unix.SetsockoptString(ls, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_KEY, string(sockopt)); err != nil {
			return nil, fmt.Errorf("TCP_FASTOPEN_KEY: %w", err)
		}
	}
	if err := unix.Bind(ls, sa(dst, int(port))); err != nil {
		return nil, err
	}
	if err := unix.Listen(ls, 4); err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(ls, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 4); err != nil {
		return nil, err
	}
	cs, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(cs)
	if err := unix.Bind(cs, sa(src, 0)); err != nil {
		return nil, err
	}
	// No cookie yet: the SYN asks for one, the data waits.
	if err := unix.Sendto(cs, []byte("x"), unix.MSG_FASTOPEN, sa(dst, int(port))); err != nil {
		return nil, fmt.Errorf("sendto MSG_FASTOPEN: %w", err)
	}
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(pk, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("no SYN/ACK with a cookie on lo: %w", err)
		}
		if c, ok := synAckCookie(buf[:n], port); ok {
			return c, nil
		}
	}
}

// synAckCookie returns the Fast Open cookie of frame (Ethernet, as lo
// gives it) when it is a SYN/ACK from port with one.
func synAckCookie(frame []byte, port uint16) ([]byte, bool) {
	if len(frame) < 14 {
		return nil, false
	}
	ip := frame[14:]
	var tcp []byte
	switch binary.BigEndian.Uint16(frame[12:]) {
	case unix.ETH_P_IP:
		if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
			return nil, false
		}
		tcp = ip[int(ip[0]&0xf)*4:]
	case unix.ETH_P_IPV6:
		if len(ip) < 40 || ip[6] != unix.IPPROTO_TCP {
			return nil, false
		}
		tcp = ip[40:]
	default:
		return nil, false
	}
	if len(tcp) < 20 || binary.BigEndian.Uint16(tcp) != port || tcp[13]&0x12 != 0x12 {
		return nil, false
	}
	opts := tcp[20:min(len(tcp), int(tcp[12]>>4)*4)]
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return nil, false
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return nil, false
		}
		if opts[0] == 34 {
			return opts[2:opts[1]], true
		}
		opts = opts[opts[1]:]
	}
	return nil, false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
