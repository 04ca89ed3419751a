// Package dynamostore implements [exchange.Store] on a DynamoDB table.
package dynamostore
