// Package tenantid lets package middleware name the tenant of a
// ctxcreds.Identity: ctxcreds reads the tenant (Identity.Tenant) but
// exports no way to set it, since only the middleware knows which of its
// tenants verified a token. ctxcreds sets With when it is initialised,
// before any package that imports it runs.
package tenantid

// With returns a copy of id, a ctxcreds.Identity, that names tenant.
var With func(id any, tenant string) any
