// Package commands holds the pure parts of a list's mail robots: which robot
// an address names, the commands a mail to -request carries, whether a mail
// was sent by a machine (and so must never be answered), the tokens that
// confirm a subscription or a moderator's decision, and the mailto: links
// that let a moderator decide with one click in any mail client.
//
// Nothing here reads a database or the network: the lists service feeds it
// what arrived over LMTP and acts on the structured result. The words of the
// results mail are the service's (they are localized); Parse only says what
// each line asked and, when it cannot be done as written, why (a Problem).
package commands
