package sockstat

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// socketJSON is a Socket as result.json holds it, with ss's names in
// snake_case; infoJSON adds the tcp_info fields when there is one.
type socketJSON struct {
	State          string  `json:"state"`
	Local          string  `json:"local"`
	Remote         string  `json:"remote"`
	RecvQ          *uint32 `json:"recv_q,omitempty"`
	SendQ          *uint32 `json:"send_q,omitempty"`
	AcceptQ        *uint32 `json:"accept_q,omitempty"`
	Backlog        *uint32 `json:"backlog,omitempty"`
	Timer          string  `json:"timer,omitempty"`
	TimerExpiresMS float64 `json:"timer_expires_ms,omitempty"`
	TimerRetrans   uint8   `json:"timer_retrans,omitempty"`
	UID            uint32  `json:"uid"`
	Inode          uint32  `json:"inode"`
	Cookie         uint64  `json:"cookie"`
	Interface      uint32  `json:"interface,omitempty"`
	Cong           string  `json:"cong,omitempty"`
	*infoJSON
}

type infoJSON struct {
	TCPState       string   `json:"tcp_info_state"`
	CAState        string   `json:"ca_state"`
	Retransmits    uint8    `json:"retransmits"`
	Probes         uint8    `json:"probes"`
	Backoff        uint8    `json:"backoff"`
	Options        []string `json:"options"`
	SndWScale      uint8    `json:"snd_wscale"`
	RcvWScale      uint8    `json:"rcv_wscale"`
	AppLimited     bool     `json:"app_limited,omitempty"`
	TFOClientFail  uint8    `json:"fastopen_client_fail,omitempty"`
	RTOMS          float64  `json:"rto_ms"`
	ATOMS          float64  `json:"ato_ms"`
	MSS            uint32   `json:"mss"`
	RcvMSS         uint32   `json:"rcvmss"`
	Unacked        uint32   `json:"unacked"`
	Sacked         uint32   `json:"sacked"`
	Lost           uint32   `json:"lost"`
	Retrans        uint32   `json:"retrans"`
	Fackets        uint32   `json:"fackets,omitempty"`
	LastSendMS     float64  `json:"lastsnd_ms"`
	LastAckSentMS  float64  `json:"lastack_sent_ms,omitempty"`
	LastRecvMS     float64  `json:"lastrcv_ms"`
	LastAckMS      float64  `json:"lastack_ms"`
	PMTU           uint32   `json:"pmtu"`
	RcvSsthresh    uint32   `json:"rcv_ssthresh"`
	RTTMS          float64  `json:"rtt_ms"`
	RTTVarMS       float64  `json:"rttvar_ms"`
	Ssthresh       *uint32  `json:"ssthresh,omitempty"`
	Cwnd           uint32   `json:"cwnd"`
	AdvMSS         uint32   `json:"advmss"`
	Reordering     uint32   `json:"reordering"`
	RcvRTTMS       float64  `json:"rcv_rtt_ms"`
	RcvSpace       uint32   `json:"rcv_space"`
	TotalRetrans   uint32   `json:"total_retrans"`
	PacingRate     *uint64  `json:"pacing_rate_bps,omitempty"`
	MaxPacingRate  *uint64  `json:"max_pacing_rate_bps,omitempty"`
	BytesAcked     uint64   `json:"bytes_acked"`
	BytesReceived  uint64   `json:"bytes_received"`
	SegsOut        uint32   `json:"segs_out"`
	SegsIn         uint32   `json:"segs_in"`
	Notsent        uint32   `json:"notsent"`
	MinRTTMS       float64  `json:"minrtt_ms"`
	DataSegsIn     uint32   `json:"data_segs_in"`
	DataSegsOut    uint32   `json:"data_segs_out"`
	DeliveryRate   uint64   `json:"delivery_rate_bps"`
	BusyMS         float64  `json:"busy_ms"`
	RwndLimitedMS  float64  `json:"rwnd_limited_ms"`
	SndbufLimitMS  float64  `json:"sndbuf_limited_ms"`
	Delivered      uint32   `json:"delivered"`
	DeliveredCE    uint32   `json:"delivered_ce"`
	BytesSent      uint64   `json:"bytes_sent"`
	BytesRetrans   uint64   `json:"bytes_retrans"`
	DSACKDups      uint32   `json:"dsack_dups"`
	ReordSeen      uint32   `json:"reord_seen"`
	RcvOOOPack     uint32   `json:"rcv_ooopack"`
	SndWnd         uint32   `json:"snd_wnd"`
	RcvWnd         uint32   `json:"rcv_wnd"`
	Rehash         uint32   `json:"rehash"`
	TotalRTO       uint16   `json:"total_rto"`
	TotalRTORecov  uint16   `json:"total_rto_recoveries"`
	TotalRTOTimeMS float64  `json:"total_rto_time_ms"`
	Len            int      `json:"tcp_info_len"`
}

// ms returns d in milliseconds; toDuration is its inverse, exact for the
// microseconds the kernel counts in.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func toDuration(ms float64) time.Duration {
	return time.Duration(math.Round(ms*1000)) * time.Microsecond
}

// bps returns a pacing rate in bytes per second as bits per second, or
// nil for no pacing (^uint64(0)), which ss does not print either;
// fromBPS is its inverse.
func bps(rate uint64) *uint64 {
	if rate == math.MaxUint64 {
		return nil
	}
	r := rate * 8
	return &r
}

func fromBPS(r *uint64) uint64 {
	if r == nil {
		return math.MaxUint64
	}
	return *r / 8
}

// MarshalJSON writes the socket with the names ss users know: state,
// local, remote, recv_q and send_q (or accept_q and backlog for a
// listener), cong, and from tcp_info cwnd, ssthresh (absent while it is
// infinite), rtt_ms, rttvar_ms, rto_ms, unacked, retrans, bytes_acked and
// the others; times in milliseconds, rates in bits per second.
func (s Socket) MarshalJSON() ([]byte, error) {
	j := socketJSON{
		State:          s.State.String(),
		Local:          s.Local.String(),
		Remote:         s.Remote.String(),
		Timer:          s.Timer.String(),
		TimerExpiresMS: ms(s.TimerExpires),
		TimerRetrans:   s.TimerRetrans,
		UID:            s.UID,
		Inode:          s.Inode,
		Cookie:         s.Cookie,
		Interface:      s.Interface,
		Cong:           s.Cong,
	}
	if s.State == Listen {
		j.AcceptQ, j.Backlog = &s.AcceptQ, &s.Backlog
	} else {
		j.RecvQ, j.SendQ = &s.RecvQ, &s.SendQ
	}
	if i := s.Info; i != nil {
		j.infoJSON = &infoJSON{
			TCPState: i.State.String(), CAState: i.CAState.String(),
			Retransmits: i.Retransmits, Probes: i.Probes, Backoff: i.Backoff,
			Options:   append([]string{}, i.Options.Names()...),
			SndWScale: i.SndWScale, RcvWScale: i.RcvWScale,
			AppLimited: i.DeliveryRateAppLimited, TFOClientFail: i.FastOpenClientFail,
			RTOMS: ms(i.RTO), ATOMS: ms(i.ATO), MSS: i.SndMSS, RcvMSS: i.RcvMSS,
			Unacked: i.Unacked, Sacked: i.Sacked, Lost: i.Lost, Retrans: i.Retrans, Fackets: i.Fackets,
			LastSendMS: ms(i.LastDataSent), LastAckSentMS: ms(i.LastAckSent),
			LastRecvMS: ms(i.LastDataRecv), LastAckMS: ms(i.LastAckRecv),
			PMTU: i.PMTU, RcvSsthresh: i.RcvSsthresh, RTTMS: ms(i.RTT), RTTVarMS: ms(i.RTTVar),
			Cwnd: i.SndCwnd, AdvMSS: i.AdvMSS, Reordering: i.Reordering,
			RcvRTTMS: ms(i.RcvRTT), RcvSpace: i.RcvSpace, TotalRetrans: i.TotalRetrans,
			BytesAcked: i.BytesAcked, BytesReceived: i.BytesReceived,
			SegsOut: i.SegsOut, SegsIn: i.SegsIn, Notsent: i.NotsentBytes, MinRTTMS: ms(i.MinRTT),
			DataSegsIn: i.DataSegsIn, DataSegsOut: i.DataSegsOut, DeliveryRate: i.DeliveryRate * 8,
			BusyMS: ms(i.BusyTime), RwndLimitedMS: ms(i.RwndLimited), SndbufLimitMS: ms(i.SndbufLimited),
			Delivered: i.Delivered, DeliveredCE: i.DeliveredCE,
			BytesSent: i.BytesSent, BytesRetrans: i.BytesRetrans, DSACKDups: i.DSACKDups,
			ReordSeen: i.ReordSeen, RcvOOOPack: i.RcvOOOPack, SndWnd: i.SndWnd, RcvWnd: i.RcvWnd,
			Rehash: i.Rehash, TotalRTO: i.TotalRTO, TotalRTORecov: i.TotalRTORecoveries,
			TotalRTOTimeMS: ms(i.TotalRTOTime), Len: i.Len,
		}
		if i.SndSsthresh < InfiniteSsthresh {
			j.Ssthresh = &i.SndSsthresh
		}
		j.PacingRate, j.MaxPacingRate = bps(i.PacingRate), bps(i.MaxPacingRate)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Socket) UnmarshalJSON(b []byte) error {
	// encoding/json cannot allocate an embedded pointer to an unexported
	// struct: give it one, and tell by tcp_info_state whether it was used.
	j := socketJSON{infoJSON: &infoJSON{}}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var out Socket
	var ok bool
	var err error
	if out.State, ok = parseState(j.State); !ok {
		return fmt.Errorf("sockstat: unknown state %q", j.State)
	}
	if out.Local, err = netip.ParseAddrPort(j.Local); err != nil {
		return fmt.Errorf("sockstat: local: %w", err)
	}
	if out.Remote, err = netip.ParseAddrPort(j.Remote); err != nil {
		return fmt.Errorf("sockstat: remote: %w", err)
	}
	for _, q := range []struct {
		dst *uint32
		src *uint32
	}{{&out.RecvQ, j.RecvQ}, {&out.SendQ, j.SendQ}, {&out.AcceptQ, j.AcceptQ}, {&out.Backlog, j.Backlog}} {
		if q.src != nil {
			*q.dst = *q.src
		}
	}
	if out.Timer, ok = parseTimer(j.Timer); !ok {
		return fmt.Errorf("sockstat: unknown timer %q", j.Timer)
	}
	out.TimerExpires = toDuration(j.TimerExpiresMS)
	out.TimerRetrans, out.UID, out.Inode, out.Cookie = j.TimerRetrans, j.UID, j.Inode, j.Cookie
	out.Interface, out.Cong = j.Interface, j.Cong
	if ij := j.infoJSON; ij.TCPState != "" {
		i, err := ij.info()
		if err != nil {
			return err
		}
		out.Info = &i
	}
	*s = out
	return nil
}

func (j *infoJSON) info() (TCPInfo, error) {
	i := TCPInfo{
		Retransmits: j.Retransmits, Probes: j.Probes, Backoff: j.Backoff,
		SndWScale: j.SndWScale, RcvWScale: j.RcvWScale,
		DeliveryRateAppLimited: j.AppLimited, FastOpenClientFail: j.TFOClientFail,
		RTO: toDuration(j.RTOMS), ATO: toDuration(j.ATOMS), SndMSS: j.MSS, RcvMSS: j.RcvMSS,
		Unacked: j.Unacked, Sacked: j.Sacked, Lost: j.Lost, Retrans: j.Retrans, Fackets: j.Fackets,
		LastDataSent: toDuration(j.LastSendMS), LastAckSent: toDuration(j.LastAckSentMS),
		LastDataRecv: toDuration(j.LastRecvMS), LastAckRecv: toDuration(j.LastAckMS),
		PMTU: j.PMTU, RcvSsthresh: j.RcvSsthresh, RTT: toDuration(j.RTTMS), RTTVar: toDuration(j.RTTVarMS),
		SndSsthresh: InfiniteSsthresh, SndCwnd: j.Cwnd, AdvMSS: j.AdvMSS, Reordering: j.Reordering,
		RcvRTT: toDuration(j.RcvRTTMS), RcvSpace: j.RcvSpace, TotalRetrans: j.TotalRetrans,
		PacingRate: fromBPS(j.PacingRate), MaxPacingRate: fromBPS(j.MaxPacingRate),
		BytesAcked: j.BytesAcked, BytesReceived: j.BytesReceived,
		SegsOut: j.SegsOut, SegsIn: j.SegsIn, NotsentBytes: j.Notsent, MinRTT: toDuration(j.MinRTTMS),
		DataSegsIn: j.DataSegsIn, DataSegsOut: j.DataSegsOut, DeliveryRate: j.DeliveryRate / 8,
		BusyTime: toDuration(j.BusyMS), RwndLimited: toDuration(j.RwndLimitedMS), SndbufLimited: toDuration(j.SndbufLimitMS),
		Delivered: j.Delivered, DeliveredCE: j.DeliveredCE,
		BytesSent: j.BytesSent, BytesRetrans: j.BytesRetrans, DSACKDups: j.DSACKDups,
		ReordSeen: j.ReordSeen, RcvOOOPack: j.RcvOOOPack, SndWnd: j.SndWnd, RcvWnd: j.RcvWnd,
		Rehash: j.Rehash, TotalRTO: j.TotalRTO, TotalRTORecoveries: j.TotalRTORecov,
		TotalRTOTime: toDuration(j.TotalRTOTimeMS), Len: j.Len,
	}
	var ok bool
	if i.State, ok = parseState(j.TCPState); !ok {
		return i, fmt.Errorf("sockstat: unknown tcp_info state %q", j.TCPState)
	}
	if i.CAState, ok = parseCAState(j.CAState); !ok {
		return i, fmt.Errorf("sockstat: unknown ca_state %q", j.CAState)
	}
	if i.Options, ok = parseOptions(j.Options); !ok {
		return i, fmt.Errorf("sockstat: unknown option in %q", j.Options)
	}
	if j.Ssthresh != nil {
		i.SndSsthresh = *j.Ssthresh
	}
	return i, nil
}
