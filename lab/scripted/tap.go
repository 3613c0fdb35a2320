package scripted

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/lab/netns"
)

// The device's frames are read twice. The TUN file must be read, or its
// queue fills and the kernel drops what the script should see; but a
// frame read there is timed when the reading goroutine got a CPU, which on
// a loaded machine is tens of milliseconds after the kernel sent it. So
// the frames the script matches come from a packet socket on the device
// (a tap), which the kernel timestamps as it hands each frame to the
// device (SO_TIMESTAMPNS): the time the kernel sent it, whatever the
// scheduler does to the script.
//
// The tap sees the script's frames too, stamped as the kernel takes them
// in (the TUN write hands each to the stack at once): the time the kernel
// got the segment, which the kernel's answer is timed from, even when the
// script's goroutine was kept from the CPU just before or after writing.

// openTap opens a packet socket on the device name in the namespace ns,
// with kernel timestamps, non-blocking so that its reads wait in the
// runtime's poller and end when it closes.
func openTap(ns *os.File, name string) (*os.File, error) {
	var tap *os.File
	err := netns.Enter(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
		}
		// The auxiliary data says which frames the kernel left their
		// checksums to the device for (TP_STATUS_CSUMNOTREADY).
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket to %s: %w", name, err)
		}
		tap = os.NewFile(uintptr(fd), "packet:"+name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	return tap, nil
}

// htons returns v in network byte order, as the packet socket's protocol
// field wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// readTap reads the next frame of the device into buf and returns its
// length, the kernel's timestamp, whether the kernel sent it (out) or
// the script wrote it in, and whether the kernel left its checksum to the
// device (partial: CHECKSUM_PARTIAL, the TCP checksum field holding the
// pseudo header's sum only). It counts each frame the kernel sent in
// taken as soon as it leaves the socket.
func readTap(tap *os.File, buf, oob []byte, taken *atomic.Int64) (n int, at time.Time, out, partial bool, err error) {
	rc, err := tap.SyscallConn()
	if err != nil {
		return 0, time.Time{}, false, false, err
	}
	var oobn int
	var from unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		if rerr == nil {
			taken.Add(1)
		}
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, time.Time{}, false, false, err
	}
	if rerr != nil {
		return 0, time.Time{}, false, false, fmt.Errorf("read tap: %w", rerr)
	}
	ll, ok := from.(*unix.SockaddrLinklayer)
	out = ok && ll.Pkttype == unix.PACKET_OUTGOING
	if !out {
		taken.Add(-1)
	}
	at = time.Now()
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				at = time.Unix(sec, nsec)
			}
			// struct tpacket_auxdata starts with tp_status.
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
				partial = binary.NativeEndian.Uint32(m.Data)&unix.TP_STATUS_CSUMNOTREADY != 0
			}
		}
	}
	return n, at, out, partial, nil
}
