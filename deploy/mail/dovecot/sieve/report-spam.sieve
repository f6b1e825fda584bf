# A message moved or copied into Spam over IMAP (imapsieve, mailbox1 in
# conf.d/90-mailplane-sieve.conf): a spam report for learning. The program
# gets the message on stdin and "spam" and the address as arguments.
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.user" "*" {
  set "user" "${1}";
}
pipe :copy "mailplane-report" ["spam", "${user}"];
