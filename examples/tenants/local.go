package main

import (
	"github.com/tipkit/tipkit/middleware"
	"github.com/tipkit/tipkit/middleware/middlewaretest"
	"github.com/tipkit/tipkit/tiptest"
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
	acme := middlewaretest.Tenant(c.acme, "acme")
	acme.Exchange.Session = dataAccessor(acmeExternalID)
	return []middleware.Tenant{acme, middlewaretest.Tenant(c.globex, "globex")}
}
