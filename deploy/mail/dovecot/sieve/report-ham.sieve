# A message moved or copied out of Spam over IMAP (imapsieve, mailbox2):
# a not-spam report, unless it went to the Trash (deleting spam says
# nothing about it).
require ["vnd.dovecot.pipe", "copy", "imapsieve", "environment", "variables"];

if environment :matches "imap.mailbox" "*" {
  set "mailbox" "${1}";
}
if string "${mailbox}" "Trash" {
  stop;
}
if environment :matches "imap.user" "*" {
  set "user" "${1}";
}
pipe :copy "mailplane-report" ["ham", "${user}"];
