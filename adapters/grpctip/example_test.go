package grpctip_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tipkit/tipkit/adapters/grpctip"
	"github.com/tipkit/tipkit/ctxcreds"
	"github.com/tipkit/tipkit/exchange"
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/tiptest"
)

// whoAmI answers which AWS account the caller acts in, with the caller's
// own credentials. Its service is written out below as protoc-gen-go-grpc
// would generate it for
//
//	service WhoAmI { rpc Call(google.protobuf.Empty) returns (google.protobuf.StringValue); }
func whoAmI(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.StringValue, error) {
	cfg, ok := ctxcreds.Config(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no caller")
	}
	id, _ := ctxcreds.IdentityFrom(ctx)
	// Any AWS client built from cfg acts as the caller.
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, status.Error(codes.Unavailable, "AWS did not answer")
	}
	return wrapperspb.String(id.Subject() + " acts in account " + aws.ToString(out.Account)), nil
}

var whoAmIDesc = grpc.ServiceDesc{
	ServiceName: "example.WhoAmI",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) { return whoAmI(ctx, req.(*emptypb.Empty)) }
			if in == nil {
				return h(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/example.WhoAmI/Call"}, h)
		},
	}},
}

func Example() {
	// A local identity provider and a local IAM Identity Center and STS
	// stand in for the real ones.
	env, err := tiptest.NewEnv()
	if err != nil {
		panic(err)
	}
	defer env.Close()
	base := env.Config() // region and endpoint of the local AWS
	base.Credentials = nil

	m, err := middleware.New(context.Background(), middleware.Options{
		Issuer:   env.IdP.Issuer(),
		Audience: []string{env.IdP.Audience()},
		Exchange: exchange.Options{
			ApplicationArn:     env.ApplicationArn,
			AccessRoleArn:      env.AccessRoleArn,
			ApplicationRoleArn: env.ApplicationRoleArn,
			Config:             base,
		},
		AWSConfig: base,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	// Health checks need no caller.
	noCaller := grpctip.WithSkipper(func(_ context.Context, method string) bool {
		return strings.HasPrefix(method, "/grpc.health.v1.Health/")
	})
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpctip.UnaryServerInterceptor(m, noCaller)),
		grpc.ChainStreamInterceptor(grpctip.StreamServerInterceptor(m, noCaller)),
	)
	srv.RegisterService(&whoAmIDesc, nil)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis := bufconn.Listen(1 << 20) // an in-memory listener; a net.Listener serves the same way
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///example",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	for _, token := range []string{env.IdP.Token("alice"), ""} {
		ctx := context.Background()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		out := new(wrapperspb.StringValue)
		if err := conn.Invoke(ctx, "/example.WhoAmI/Call", new(emptypb.Empty), out); err != nil {
			st := status.Convert(err)
			fmt.Println(st.Code(), st.Message())
			continue
		}
		fmt.Println(out.GetValue())
	}
	h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println("health without a token:", h.GetStatus(), err)
	// Output:
	// alice acts in account 123456789012
	// Unauthenticated a bearer token is required
	// health without a token: SERVING <nil>
}
