package main

import (
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
	"github.com/tipkit/tipkit/verify"
)

// customers are two local customers, each a tiptest environment of its
// own (an identity provider, an IAM Identity Center instance, STS): acme
// in us-east-1, globex in eu-west-1.
type customers struct {
	acme, globex *tiptest.Env
}

func startCustomers() (*customers, error) {
	acme, err := tiptest.NewEnv()
	if err != nil {
		return nil, err
	}
	globex, err := tiptest.NewEnv(tiptest.WithRegion("eu-west-1"))
	if err != nil {
		acme.Close()
		return nil, err
	}
	return &customers{acme: acme, globex: globex}, nil
}

func (c *customers) close() {
	c.acme.Close()
	c.globex.Close()
}

// acmeExternalID is the external ID of acme's Amazon Q Business data
// accessor: acme's sessions carry it as a session tag.
const acmeExternalID = "acme-data-accessor-4711"

// tenants are the middleware's tenants for the customers. acme reaches
// its data through a data accessor: its users' sessions are shaped by
// dataAccessor.
func (c *customers) tenants() []middleware.Tenant {
	acme := tenantOf("acme", c.acme)
	acme.Exchange.Session = dataAccessor(acmeExternalID)
	return []middleware.Tenant{acme, tenantOf("globex", c.globex)}
}

// tenantOf is the tenant of env, as middlewaretest wires one to env: its
// identity provider, its application and roles, its endpoints.
func tenantOf(name string, env *tiptest.Env) middleware.Tenant {
	o := middlewaretest.Options(env)
	return middleware.Tenant{
		Name:      name,
		Issuers:   []verify.Issuer{{Issuer: o.Issuer, Audience: o.Audience}},
		Exchange:  o.Exchange,
		AWSConfig: o.AWSConfig,
	}
}
