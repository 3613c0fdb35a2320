package pkt

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Settings are what a script's header and the command line set:
// packetdrill's flags that this runner knows.
type Settings struct {
	// Tolerance is packetdrill's --tolerance_usecs: how early or late a
	// packet or a call may be (default 4 ms).
	Tolerance time.Duration
	// TolerancePercent is --tolerance_percent: a share of the gap since
	// the previous event that widens Tolerance when larger (default
	// 12.5, the kernel timer wheel's rounding, as package scripted uses).
	TolerancePercent float64
	// MTU is --mtu, the device's MTU (default 1500).
	MTU int
	// Mapped is --ip_version=ipv4-mapped-ipv6: the script's sockets are
	// AF_INET6 and their addresses IPv4 mapped into IPv6, the wire
	// IPv4.
	Mapped bool
	// IPv6 is --ip_version=ipv6: IPv6 sockets and frames (the addresses
	// of addrs6).
	IPv6 bool
	// InitScripts are --init_scripts' commands, run with /bin/sh in the
	// script's namespace and folder before it plays.
	InitScripts []string
	// StrictSegments is --strict_segments: an expected packet must come
	// as one segment of its length; without it, as packetdrill does, the
	// kernel's consecutive segments that add up to it match too.
	StrictSegments bool
	// MSS is --mss: the script's TCP segments go to the device marked as
	// GSO of this size (scripted.Config.GSOSize); 0 marks none.
	MSS int
	// TSTick is --tcp_ts_tick_usecs: the time of one tick of the
	// kernel's TS val, which the kernel's packets' TS values are then
	// checked against (tsClock); 0 checks none.
	TSTick time.Duration
	// TSEcrScaled is --tcp_ts_ecr_scaled: a TS ecr of the script's that
	// echoes no TS val of the kernel's packets is taken to the kernel's
	// clock from the first TS val it sent (tsClock.ecr).
	TSEcrScaled bool
	// Local is --local_ip, the kernel's address on the device, with
	// LocalBits its prefix's length (--netmask_ip's for IPv4, default
	// 16 as packetdrill's 255.255.0.0; 48 for IPv6); Remote is
	// --remote_ip, the script's address (a prefix's length, which
	// packetdrill allows, is dropped); Gateway is --gateway_ip, checked
	// to be an address of the family and otherwise unused: the device
	// needs no gateway, the script's address is routed through it.
	// Invalid when not given: the defaults (addrs6, scripted's) hold.
	Local, Remote, Gateway netip.Addr
	LocalBits              int
	// BindPort is --bind_port, the port a socket bound to "..." gets
	// (the kernel's, which the script's SYNs go to); ConnectPort is
	// --connect_port, the port a connect to "..." goes to (the
	// script's). packetdrill's default for both is Port.
	BindPort, ConnectPort uint16
	// Defines are the definitions of --define (-D on the command line):
	// NAME to VALUE, the last of a name winning.
	Defines map[string]string
}

// CheckOptions checks the values of packetdrill's flags given on a
// command line (--name=value, Line 0): nil, or what is wrong with the
// first that is wrong. A flag whose feature Run lacks (ipv6) is no
// error here: each script is skipped with the reason.
func CheckOptions(opts []Option) error {
	if _, u := settings(&Script{Options: opts}); u != nil && u.Bad {
		return errors.New(u.Reason)
	}
	return nil
}

// addrs6 are the addresses of --ip_version=ipv6: in packetdrill's
// unique local prefix (RFC 4193), the kernel's on the device's /48 and
// the script's.
func addrs6() (kernel netip.Prefix, script netip.Addr) {
	return netip.MustParsePrefix("fd3d:fa7b:d17d::1/48"), netip.MustParseAddr("fd3d:fa7b:d17d::2")
}

// DefaultTolerance is packetdrill's --tolerance_usecs default.
const DefaultTolerance = 4 * time.Millisecond

// settings reads the script's header over the defaults. An option this
// runner does not know is unsupported: its line and why.
func settings(s *Script) (Settings, *Unsupported) {
	set := Settings{Tolerance: DefaultTolerance, TolerancePercent: 12.5, MTU: 1500, BindPort: Port, ConnectPort: Port}
	netmask := -1
	// addrs are the address options, checked against the family when
	// every option is read (--ip_version may come after them).
	var addrs []Option
	for _, o := range s.Options {
		bad := func(why string) (Settings, *Unsupported) {
			return set, &Unsupported{Line: o.Line, Reason: fmt.Sprintf("--%s=%s: %s", o.Name, o.Value, why), Bad: true}
		}
		lacks := func(why string) (Settings, *Unsupported) {
			return set, &Unsupported{Line: o.Line, Reason: fmt.Sprintf("--%s=%s: %s", o.Name, o.Value, why)}
		}
		switch o.Name {
		case "tolerance_usecs":
			n, err := strconv.ParseUint(o.Value, 10, 32)
			if err != nil {
				return bad("want a number of microseconds")
			}
			set.Tolerance = time.Duration(n) * time.Microsecond
		case "tolerance_percent":
			f, err := strconv.ParseFloat(o.Value, 64)
			if err != nil || f < 0 || f > 100 {
				return bad("want a percentage")
			}
			set.TolerancePercent = f
		case "mtu":
			n, err := strconv.Atoi(o.Value)
			if err != nil || n < 576 || n > 65535 {
				return bad("want an MTU from 576 to 65535")
			}
			set.MTU = n
		case "ip_version":
			switch o.Value {
			case "ipv4":
				set.Mapped, set.IPv6 = false, false
			case "ipv4-mapped-ipv6":
				set.Mapped, set.IPv6 = true, false
			case "ipv6":
				set.Mapped, set.IPv6 = false, true
			default:
				return bad("want ipv4, ipv4-mapped-ipv6 or ipv6")
			}
		case "init_scripts":
			set.InitScripts = nil
			for _, c := range strings.Split(o.Value, ",") {
				if c = strings.TrimSpace(c); c != "" {
					set.InitScripts = append(set.InitScripts, c)
				}
			}
		case "mss":
			n, err := strconv.Atoi(o.Value)
			if err != nil || n < 1 || n > 65535 {
				return bad("want a segment size from 1 to 65535")
			}
			set.MSS = n
		case "strict_segments":
			set.StrictSegments = true
		case "local_ip", "remote_ip", "gateway_ip":
			text := o.Value
			if o.Name == "remote_ip" {
				text, _, _ = strings.Cut(text, "/")
			}
			a, err := netip.ParseAddr(text)
			if err != nil || a.Zone() != "" || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() {
				return bad("want an IPv4 or IPv6 address")
			}
			switch o.Name {
			case "local_ip":
				set.Local = a
			case "remote_ip":
				set.Remote = a
			default:
				set.Gateway = a
			}
			addrs = append(addrs, o)
		case "netmask_ip":
			m, err := netip.ParseAddr(o.Value)
			bits := -1
			if err == nil && m.Is4() {
				v := binary.BigEndian.Uint32(m.AsSlice())
				if ones := bits32(v); v == ^uint32(0)<<(32-ones) || ones == 0 && v == 0 {
					bits = ones
				}
			}
			if bits < 1 {
				return bad("want an IPv4 netmask such as 255.255.0.0")
			}
			netmask = bits
		case "bind_port", "connect_port":
			n, err := strconv.ParseUint(o.Value, 10, 16)
			if err != nil || n == 0 {
				return bad("want a port from 1 to 65535")
			}
			if o.Name == "bind_port" {
				set.BindPort = uint16(n)
			} else {
				set.ConnectPort = uint16(n)
			}
		case "tcp_ts_tick_usecs":
			n, err := strconv.ParseUint(o.Value, 10, 32)
			if err != nil || n > 1000000 {
				return bad("want the microseconds of a TS val tick, 0 to 1000000")
			}
			set.TSTick = time.Duration(n) * time.Microsecond
		case "tcp_ts_ecr_scaled":
			set.TSEcrScaled = true
		case "define":
			name, value, ok := define(o.Value)
			if !ok {
				return bad("want NAME=VALUE, such as CMSG_LEVEL_IP=SOL_IP")
			}
			if value[0] == '`' {
				return lacks("a definition whose value is a `command` is not supported: define a name, a number or a \"string\"")
			}
			if set.Defines == nil {
				set.Defines = map[string]string{}
			}
			set.Defines[name] = value
		case "send_omit_free":
			// packetdrill's: a zerocopy send's buffer is not reused
			// while the kernel may still read it. Each send here writes
			// from a buffer of its own, never reused.
		default:
			return lacks("not supported by tcplab pkt")
		}
	}
	for _, o := range addrs {
		var a netip.Addr
		switch o.Name {
		case "local_ip":
			a = set.Local
		case "remote_ip":
			a = set.Remote
		default:
			a = set.Gateway
		}
		if a.Is6() != set.IPv6 {
			family := "an IPv4 address"
			if set.IPv6 {
				family = "an IPv6 address"
			}
			return set, &Unsupported{Line: o.Line, Reason: fmt.Sprintf("--%s=%s: want %s, as --ip_version asks", o.Name, o.Value, family), Bad: true}
		}
	}
	if set.Local.IsValid() && set.Local == set.Remote {
		return set, &Unsupported{Line: addrs[0].Line, Reason: fmt.Sprintf("--local_ip and --remote_ip are both %v: give the script another address than the kernel's", set.Local), Bad: true}
	}
	set.LocalBits = 48
	if !set.IPv6 {
		set.LocalBits = 16
		if netmask > 0 {
			set.LocalBits = netmask
		}
	}
	return set, nil
}

// bits32 counts the bits set in v.
func bits32(v uint32) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// Unsupported is a construct of a script that this runner cannot play:
// the script is skipped, never passed.
type Unsupported struct {
	Line   int
	Reason string
	// Bad is set for an option whose value is wrong, which no runner
	// could play, rather than a feature this one lacks.
	Bad bool
}

// supportedCalls are the system calls Run makes, each with the number
// of arguments it takes (fcntl: at least).
var supportedCalls = map[string]int{
	"socket": 3, "bind": 3, "listen": 2, "accept": 3, "connect": 3,
	"read": 3, "write": 3, "send": 4, "recv": 4, "recvfrom": 6, "close": 1,
	"shutdown": 2, "setsockopt": 5, "getsockopt": 5, "fcntl": 2, "poll": 3,
	"ioctl": 3, "sendto": 6, "sendmsg": 3, "recvmsg": 3, "pipe": 1, "open": 2,
	"splice": 6, "sendfile": 4, "epoll_create": 1, "epoll_ctl": 4, "epoll_wait": 4,
}

// Check says what of s Run does not play, as the Unsupported that
// skips it (the script's line and the reason), or nil when Run plays it
// all. It runs nothing.
func Check(s *Script) *Unsupported { return check(s) }

// check finds the first construct of s that Run cannot play.
func check(s *Script) *Unsupported {
	if _, u := settings(s); u != nil {
		return u
	}
	for _, e := range s.Events {
		line, t := e.Pos()
		un := func(format string, args ...any) *Unsupported {
			return &Unsupported{Line: line, Reason: fmt.Sprintf(format, args...)}
		}
		switch e := e.(type) {
		case *Packet:
			if m := e.ICMP; m != nil {
				switch {
				case e.Dir == Outbound:
					return un("the kernel's ICMP messages are not checked yet: the script sends them (<)")
				case m.Quoted == "udp" || m.Quoted == "raw":
					return un("an ICMP message quoting %s is not scripted: it quotes the kernel's TCP segment ([1:1461(1460)])", m.Quoted)
				case m.ID != nil:
					return un("an ICMP echo id is for ICMP sockets, which are not scripted")
				case e.ECN != "":
					return un("an ICMP message's ECN field [%s] is not scripted", e.ECN)
				case t.Span != NoSpan:
					return un("an ICMP message is sent at one time, neither a range (~) nor blocking (...)")
				}
				// A name that is neither family's is the script's
				// error, which packetdrill fails ("bad ICMP code").
				if _, err4 := icmpOf(m, false); err4 != nil {
					if _, err6 := icmpOf(m, true); err6 != nil {
						u := un("%v", err4)
						u.Bad = true
						return u
					}
				}
				continue
			}
			if e.Protocol != "tcp" {
				return un("%s packets are not scripted (TCP and ICMP only)", e.Protocol)
			}
			if e.ECN == "ect01" && e.Dir == Inbound {
				return un("[ect01] names two codepoints, for the kernel's packets: the script sends one ([ect0] or [ect1])")
			}
			if t.Span == Blocking {
				return un("a packet cannot block (...): write a range with ~")
			}
			if e.Dir == Inbound && t.Span == Range {
				return un("an inbound packet is sent at one time: a range (~) is for outbound packets")
			}
			for _, o := range e.Options {
				switch o.Kind {
				case OptFO:
					_, named := namedCookies[o.Raw]
					if _, err := hex.DecodeString(o.Raw); err != nil && !named && e.Dir == Inbound {
						return un("TCP option %s: the script sends a cookie written in hex (FO abcd1234), named (TFO_COOKIE, TFO_COOKIE_ZERO) or none (FO)", o)
					}
				case OptMD5:
					if b, err := hex.DecodeString(o.Raw); err != nil || len(b) != 16 || e.Dir != Inbound {
						return un("TCP option %s: the script sends an MD5 option of 16 bytes in hex (md5 000102...0f); the kernel's is not checked yet", o)
					}
				case OptExp, OptOther:
					return un("TCP option %s is not scripted yet", o)
				}
			}
		case *Syscall:
			n, ok := supportedCalls[e.Name]
			if !ok {
				return un("system call %s is not supported yet", e.Name)
			}
			if len(e.Args) != n && !(e.Name == "fcntl" && len(e.Args) == 3) {
				return un("%s takes %d arguments, not %d", e.Name, n, len(e.Args))
			}
			if t.Span == Range {
				return un("a system call's time is a point or a blocking span (...), not a range (~)")
			}
			if u := checkCall(e); u != "" {
				return un("%s", u)
			}
			if e.Name == "bind" || e.Name == "connect" {
				if len(e.Args) != 3 || e.Args[1] != (Ellipsis{}) && !disconnect(e) {
					return un("%s to an address other than the default (...) is not supported yet", e.Name)
				}
			}
		}
	}
	return nil
}

// disconnect reports whether sc is connect(fd, AF_UNSPEC, ...), which
// takes the socket back to CLOSE (tcp_disconnect: an RST to the peer
// where the connection was synchronized) so that it may connect again.
func disconnect(sc *Syscall) bool {
	return sc.Name == "connect" && len(sc.Args) == 3 && sc.Args[1] == Name("AF_UNSPEC")
}

// sendtoUnspec reports whether sc is sendto(fd, ..., N, F, AF_UNSPEC,
// ...): to an address of no family, which connects nothing (the kernel
// refuses it for a Fast Open, EOPNOTSUPP).
func sendtoUnspec(sc *Syscall) bool {
	return sc.Name == "sendto" && len(sc.Args) > 4 && sc.Args[4] == Name("AF_UNSPEC")
}

// checkCall says what of a call Run does not play, or "".
func checkCall(sc *Syscall) string {
	// sendto's and sendmsg's MSG_FASTOPEN are played: they connect to
	// the script. send's has no address to connect to.
	flagArg := map[string]int{"send": 3}
	if i, ok := flagArg[sc.Name]; ok && i < len(sc.Args) {
		if f, err := eval(sc.Args[i]); err == nil && f&unix.MSG_FASTOPEN != 0 {
			return sc.Name + " with MSG_FASTOPEN is not played yet (sendto's and sendmsg's are)"
		}
	}
	if sc.Name == "sendto" && (sc.Args[4] != (Ellipsis{}) && !sendtoUnspec(sc) || sc.Args[5] != (Ellipsis{})) {
		return "sendto to an address other than the connection's (...) or AF_UNSPEC is not supported yet"
	}
	if sc.Name == "recvfrom" && (sc.Args[4] != (Ellipsis{}) || sc.Args[5] != (Ellipsis{})) {
		return "recvfrom from an address other than the connection's (...) is not supported yet"
	}
	if sc.Name == "sendmsg" || sc.Name == "recvmsg" {
		st, ok := sc.Args[1].(*Struct)
		if !ok {
			return sc.Name + "'s message is a struct msghdr: {msg_name(...)=..., msg_iov(1)=[{..., N}], msg_flags=0}"
		}
		for _, f := range st.Fields {
			switch {
			case f.Name == "msg_name" && f.Value != (Ellipsis{}):
				return sc.Name + " to or from an address other than the connection's (msg_name=...) is not supported yet"
			case f.Name == "msg_control":
				a, ok := f.Value.(*Array)
				if !ok || len(a.Elems) > 0 && sc.Name == "sendmsg" {
					return sc.Name + " with control messages (msg_control) is not supported yet"
				}
				for _, e := range a.Elems {
					if _, err := cmsgOf(e); err != nil {
						return "recvmsg's control message: " + err.Error()
					}
				}
			}
		}
	}
	if sc.Name == "ioctl" && len(sc.Args) > 1 {
		switch sc.Args[1] {
		case Name("SIOCINQ"), Name("SIOCOUTQ"), Name("SIOCOUTQNSD"):
		default:
			return fmt.Sprintf("ioctl %v is not supported (SIOCINQ, SIOCOUTQ and SIOCOUTQNSD are)", sc.Args[1])
		}
	}
	return ""
}
