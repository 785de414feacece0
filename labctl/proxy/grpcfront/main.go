// The proxy's gRPC front in Go: the same job as labctl/proxy/grpc_front.py (read its docstring for
// the frames on the socket), for a fraction of grpc.aio's CPU per call. It takes the OTLP Export
// calls, relays each request's bytes, metadata and peer to the proxy over the inherited socket, and
// returns the proxy's answer. grpc-go enforces the size limit (RESOURCE_EXHAUSTED) and inflates gzip;
// the requests are never decoded here.
//
//	labctl-grpc-front --listen 127.0.0.1:4317 --max-bytes N --fd FD
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // clients may send gzip: grpc-go inflates it
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The services in the order of grpc_front.SIGNAL_NAMES: a call frame's signal byte is the index.
var services = []string{
	"opentelemetry.proto.collector.metrics.v1.MetricsService",
	"opentelemetry.proto.collector.logs.v1.LogsService",
	"opentelemetry.proto.collector.trace.v1.TraceService",
}

const detailsKey = "grpc-status-details-bin"

// rawCodec passes messages through as bytes: the proxy parses the requests and writes the replies.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

type answer struct {
	code     codes.Code
	message  string
	reply    []byte
	trailing [][2][]byte
}

type front struct {
	out     chan net.Buffers // frames for the proxy, gathered into one write by writer()
	mu      sync.Mutex
	pending map[uint32]chan answer
	ids     atomic.Uint32
	ended   atomic.Bool // the proxy's end of input: nobody will answer any more
}

func (f *front) export(ctx context.Context, sig byte, body []byte) (any, error) {
	if f.ended.Load() {
		return nil, status.Error(codes.Unavailable, "the proxy is stopping")
	}
	call := f.ids.Add(1)
	ch := make(chan answer, 1)
	f.mu.Lock()
	f.pending[call] = ch
	f.mu.Unlock()
	f.out <- callFrame(call, sig, body, metaPairs(ctx), peerOf(ctx))
	var ans answer
	select {
	case ans = <-ch:
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.pending, call)
		f.mu.Unlock()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if ans.code == codes.OK {
		return ans.reply, nil
	}
	st := &spb.Status{Code: int32(ans.code), Message: ans.message}
	var trailer metadata.MD
	for _, kv := range ans.trailing {
		key := string(kv[0])
		if key == detailsKey {
			// The proxy's google.rpc.Status (RetryInfo for a full spool): grpc-go writes it back.
			if err := proto.Unmarshal(kv[1], st); err == nil {
				st.Code, st.Message = int32(ans.code), ans.message
			}
			continue
		}
		if trailer == nil {
			trailer = metadata.MD{}
		}
		trailer.Append(key, string(kv[1]))
	}
	if trailer != nil {
		_ = grpc.SetTrailer(ctx, trailer)
	}
	return nil, status.FromProto(st).Err()
}

// metaPairs: the request's metadata as grpcio shows it to a handler (no pseudo-headers, content-type
// or grpc-* transport headers), sorted so that one client's calls always give the same pairs.
func metaPairs(ctx context.Context) [][2]string {
	md, _ := metadata.FromIncomingContext(ctx)
	pairs := make([][2]string, 0, len(md))
	for key, values := range md {
		if strings.HasPrefix(key, ":") || strings.HasPrefix(key, "grpc-") || key == "content-type" {
			continue
		}
		for _, v := range values {
			pairs = append(pairs, [2]string{key, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	return pairs
}

// peerOf writes the client's address the way grpcio does: "ipv4:127.0.0.1:5", "ipv6:[::1]:5".
func peerOf(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		if ip4 := tcp.IP.To4(); ip4 != nil {
			return fmt.Sprintf("ipv4:%s:%d", ip4, tcp.Port)
		}
		return fmt.Sprintf("ipv6:[%s]:%d", tcp.IP, tcp.Port)
	}
	return p.Addr.Network() + ":" + p.Addr.String()
}

func putPairs(b []byte, pairs [][2]string) []byte {
	for _, kv := range pairs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(kv[0])))
		b = binary.BigEndian.AppendUint32(b, uint32(len(kv[1])))
		b = append(b, kv[0]...)
		b = append(b, kv[1]...)
	}
	return b
}

// callFrame: "C" call:u32 signal:u8 peer_len:u16 meta_len:u32 peer meta body (after the length).
func callFrame(call uint32, sig byte, body []byte, pairs [][2]string, peerText string) net.Buffers {
	meta := putPairs(nil, pairs)
	size := 1 + 4 + 1 + 2 + 4 + len(peerText) + len(meta) + len(body)
	head := make([]byte, 0, 4+size-len(body))
	head = binary.BigEndian.AppendUint32(head, uint32(size))
	head = append(head, 'C')
	head = binary.BigEndian.AppendUint32(head, call)
	head = append(head, sig)
	head = binary.BigEndian.AppendUint16(head, uint16(len(peerText)))
	head = binary.BigEndian.AppendUint32(head, uint32(len(meta)))
	head = append(head, peerText...)
	head = append(head, meta...)
	return net.Buffers{head, body}
}

func shortFrame(kind byte, rest []byte) net.Buffers {
	head := binary.BigEndian.AppendUint32(nil, uint32(1+len(rest)))
	return net.Buffers{append(append(head, kind), rest...)}
}

// writer sends the frames queued since its last write in one write (the proxy answers those together).
func (f *front) writer(conn net.Conn) {
	for bufs := range f.out {
	gather:
		for len(bufs) < 256 {
			select {
			case more, ok := <-f.out:
				if !ok {
					break gather
				}
				bufs = append(bufs, more...)
			default:
				break gather
			}
		}
		if _, err := bufs.WriteTo(conn); err != nil {
			return // the reader sees the end of input
		}
	}
}

func parsePairs(b []byte) ([][2][]byte, bool) {
	var pairs [][2][]byte
	for len(b) > 0 {
		if len(b) < 6 {
			return nil, false
		}
		klen, vlen := int(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint32(b[2:]))
		b = b[6:]
		if len(b) < klen+vlen {
			return nil, false
		}
		pairs = append(pairs, [2][]byte{b[:klen], b[klen : klen+vlen]})
		b = b[klen+vlen:]
	}
	return pairs, true
}

// reader takes the proxy's frames until "S" (stop) or the end of input.
func (f *front) reader(conn net.Conn, stop chan<- bool) {
	in := bufio.NewReaderSize(conn, 64<<10)
	var head [4]byte
	for {
		if _, err := io.ReadFull(in, head[:]); err != nil {
			break
		}
		frame := make([]byte, binary.BigEndian.Uint32(head[:]))
		if _, err := io.ReadFull(in, frame); err != nil || len(frame) == 0 {
			break
		}
		if frame[0] == 'S' {
			stop <- false
			continue
		}
		if frame[0] != 'A' || len(frame) < 14 {
			continue
		}
		call := binary.BigEndian.Uint32(frame[1:])
		code := codes.Code(frame[5])
		mlen, tlen := int(binary.BigEndian.Uint32(frame[6:])), int(binary.BigEndian.Uint32(frame[10:]))
		rest := frame[14:]
		if len(rest) < mlen+tlen {
			continue
		}
		trailing, ok := parsePairs(rest[mlen : mlen+tlen])
		if !ok {
			continue
		}
		ans := answer{code, string(rest[:mlen]), rest[mlen+tlen:], trailing}
		f.mu.Lock()
		ch := f.pending[call]
		delete(f.pending, call)
		f.mu.Unlock()
		if ch != nil {
			ch <- ans
		}
	}
	f.ended.Store(true)
	f.mu.Lock()
	for call, ch := range f.pending {
		ch <- answer{code: codes.Unavailable, message: "the proxy is stopping"}
		delete(f.pending, call)
	}
	f.mu.Unlock()
	stop <- true
}

func main() {
	dieWithParent()
	// Ctrl-C in the proxy's terminal reaches the whole group: the proxy decides when the front stops.
	signal.Ignore(os.Interrupt)
	if os.Getenv("GOGC") == "" {
		// Each call allocates its request once and keeps nothing: a 5x heap (a few MiB) for a
		// quarter less CPU in the collector on 1000-point requests.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The proxy's Python process behind it is single-threaded and costs several times this one per
		// call: one core is plenty here, and fewer idle threads spinning for work leave more CPU to the
		// proxy (a fifth less of the front's CPU per call on two cores, measured side by side).
		runtime.GOMAXPROCS(1)
	}
	listen := flag.String("listen", "", "host:port to serve OTLP gRPC on")
	maxBytes := flag.Int("max-bytes", 0, "the largest request accepted, in bytes (inflated)")
	fd := flag.Int("fd", -1, "the socket to the proxy, inherited")
	flag.Parse()
	if *listen == "" || *maxBytes <= 0 || *fd < 0 {
		fmt.Fprintln(os.Stderr, "usage: labctl-grpc-front --listen HOST:PORT --max-bytes N --fd FD")
		os.Exit(2)
	}
	conn, err := net.FileConn(os.NewFile(uintptr(*fd), "proxy"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "labctl-grpc-front: fd %d is not the proxy's socket: %v\n", *fd, err)
		os.Exit(2)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		msg := shortFrame('E', []byte("cannot listen for OTLP gRPC on "+*listen))
		_, _ = msg.WriteTo(conn)
		return
	}
	f := &front{out: make(chan net.Buffers, 1024), pending: map[uint32]chan answer{}}
	go f.writer(conn)
	server := grpc.NewServer(grpc.MaxRecvMsgSize(*maxBytes), grpc.ForceServerCodecV2(rawCodec{}))
	for i, name := range services {
		sig := byte(i)
		server.RegisterService(&grpc.ServiceDesc{
			ServiceName: name,
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{
				MethodName: "Export",
				Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
					var body []byte
					if err := dec(&body); err != nil {
						return nil, err
					}
					return f.export(ctx, sig, body)
				},
			}},
		}, struct{}{})
	}
	port := uint16(lis.Addr().(*net.TCPAddr).Port)
	f.out <- shortFrame('R', binary.BigEndian.AppendUint16(nil, port))
	go func() { _ = server.Serve(lis) }()

	stop := make(chan bool, 2)
	go f.reader(conn, stop)
	if ended := <-stop; ended {
		server.Stop() // at the end of input no call can be answered: now
		return
	}
	// Asked to stop: the calls in flight get a second to be answered.
	done := make(chan struct{})
	go func() { server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		server.Stop()
	}
}
