package letters

// The answer to a mail of commands: one Results letter whose Results are
// fragments, one per command line (Line is the line as written).

// Results answers a mail of commands; Results are the rendered
// fragments, one paragraph each.
var Results = Kind{
	Name: "results",
	Keys: []string{"List", "Results"},
	Text: map[Lang]Text{
		EN: {"The results of your commands to {{.List}}", "Your mail to {{.List}} was read:\n\n{{.Results}}\n"},
		FR: {"Résultat de vos commandes à {{.List}}", "Votre message à {{.List}} a été lu :\n\n{{.Results}}\n"},
		DE: {"Ergebnis Ihrer Befehle an {{.List}}", "Ihre Mail an {{.List}} wurde gelesen:\n\n{{.Results}}\n"},
		IT: {"Risultato dei tuoi comandi a {{.List}}", "La tua mail a {{.List}} è stata letta:\n\n{{.Results}}\n"},
		ES: {"Resultado de tus comandos a {{.List}}", "Tu correo a {{.List}} fue leído:\n\n{{.Results}}\n"},
	},
}

// fragment is a Kind of one line per language.
func fragment(name string, keys []string, en, fr, de, it, es string) Kind {
	return Kind{Name: name, Keys: keys, Text: map[Lang]Text{EN: {Body: en}, FR: {Body: fr}, DE: {Body: de}, IT: {Body: it}, ES: {Body: es}}}
}

var line = []string{"Line"}

// The fragments of Results.
var (
	// ResJoin: a join was taken; what follows is mailed to Email.
	ResJoin = fragment("res_join", []string{"Line", "Email"},
		"> {{.Line}}\nTaken: a mail was sent to {{.Email}} about it.",
		"> {{.Line}}\nPris en compte : un message a été envoyé à {{.Email}} à ce sujet.",
		"> {{.Line}}\nAngenommen: eine Mail dazu wurde an {{.Email}} gesendet.",
		"> {{.Line}}\nPreso in carico: è stata inviata una mail a {{.Email}}.",
		"> {{.Line}}\nRecibido: se envió un correo a {{.Email}} al respecto.")
	// ResDone: the command was done.
	ResDone = fragment("res_done", line,
		"> {{.Line}}\nDone.",
		"> {{.Line}}\nFait.",
		"> {{.Line}}\nErledigt.",
		"> {{.Line}}\nFatto.",
		"> {{.Line}}\nHecho.")
	// ResBadToken: the token is unknown, used or expired.
	ResBadToken = fragment("res_bad_token", line,
		"> {{.Line}}\nThis code is unknown, used already or expired: nothing was changed.",
		"> {{.Line}}\nCe code est inconnu, déjà utilisé ou expiré : rien n'a changé.",
		"> {{.Line}}\nDieser Code ist unbekannt, schon benutzt oder abgelaufen: nichts wurde geändert.",
		"> {{.Line}}\nQuesto codice è sconosciuto, già usato o scaduto: non è cambiato nulla.",
		"> {{.Line}}\nEste código es desconocido, ya se usó o caducó: no ha cambiado nada.")
	// ResNotAllowed: a moderator's command without the moderator password.
	ResNotAllowed = fragment("res_not_allowed", line,
		"> {{.Line}}\nOnly a moderator may do this, with the line \"Approved: password\" in the mail.",
		"> {{.Line}}\nSeul un modérateur peut faire cela, avec la ligne « Approved: mot de passe » dans le message.",
		"> {{.Line}}\nNur ein Moderator darf das, mit der Zeile „Approved: Passwort“ in der Mail.",
		"> {{.Line}}\nSolo un moderatore può farlo, con la riga «Approved: password» nella mail.",
		"> {{.Line}}\nSolo un moderador puede hacerlo, con la línea «Approved: contraseña» en el correo.")
	// ResNotPending: nothing of that address awaits a decision.
	ResNotPending = fragment("res_not_pending", line,
		"> {{.Line}}\nNo subscription of this address awaits a decision.",
		"> {{.Line}}\nAucun abonnement de cette adresse n'attend de décision.",
		"> {{.Line}}\nKeine Eintragung dieser Adresse wartet auf eine Entscheidung.",
		"> {{.Line}}\nNessuna iscrizione di questo indirizzo attende una decisione.",
		"> {{.Line}}\nNinguna suscripción de esta dirección espera una decisión.")
	// ResFailed: the command could not be done (the list changed meanwhile).
	ResFailed = fragment("res_failed", []string{"Line", "Why"},
		"> {{.Line}}\nNot done: {{.Why}}",
		"> {{.Line}}\nNon fait : {{.Why}}",
		"> {{.Line}}\nNicht erledigt: {{.Why}}",
		"> {{.Line}}\nNon fatto: {{.Why}}",
		"> {{.Line}}\nNo hecho: {{.Why}}")
	// ResUnknown: no command.
	ResUnknown = fragment("res_unknown", line,
		"> {{.Line}}\nThis is no command (write \"help\" for the list of them).",
		"> {{.Line}}\nCe n'est pas une commande (écrivez « help » pour les connaître).",
		"> {{.Line}}\nDas ist kein Befehl (schreiben Sie „help“ für die Liste der Befehle).",
		"> {{.Line}}\nQuesto non è un comando (scrivi «help» per l'elenco).",
		"> {{.Line}}\nEsto no es un comando (escribe «help» para verlos).")
	// ResMissing: a command without its argument.
	ResMissing = fragment("res_missing", line,
		"> {{.Line}}\nThis command needs an argument (a code or an address).",
		"> {{.Line}}\nCette commande a besoin d'un argument (un code ou une adresse).",
		"> {{.Line}}\nDieser Befehl braucht ein Argument (einen Code oder eine Adresse).",
		"> {{.Line}}\nQuesto comando richiede un argomento (un codice o un indirizzo).",
		"> {{.Line}}\nEste comando necesita un argumento (un código o una dirección).")
	// ResTooMany: words after a command that takes none.
	ResTooMany = fragment("res_too_many", line,
		"> {{.Line}}\nToo many words after the command.",
		"> {{.Line}}\nTrop de mots après la commande.",
		"> {{.Line}}\nZu viele Wörter nach dem Befehl.",
		"> {{.Line}}\nTroppe parole dopo il comando.",
		"> {{.Line}}\nDemasiadas palabras tras el comando.")
	// ResBadAddress: the argument is no address.
	ResBadAddress = fragment("res_bad_address", line,
		"> {{.Line}}\nThis is no valid email address.",
		"> {{.Line}}\nCe n'est pas une adresse e-mail valide.",
		"> {{.Line}}\nDas ist keine gültige E-Mail-Adresse.",
		"> {{.Line}}\nQuesto non è un indirizzo email valido.",
		"> {{.Line}}\nEsta no es una dirección de correo válida.")
	// ResBadCode: the argument is neither code nor address.
	ResBadCode = fragment("res_bad_code", line,
		"> {{.Line}}\nThis is no code this list sent, nor an address.",
		"> {{.Line}}\nCe n'est ni un code envoyé par cette liste, ni une adresse.",
		"> {{.Line}}\nDas ist weder ein Code dieser Liste noch eine Adresse.",
		"> {{.Line}}\nNon è né un codice inviato da questa lista né un indirizzo.",
		"> {{.Line}}\nNo es un código enviado por esta lista ni una dirección.")
	// ResTruncated: more lines than a mail may hold were not read.
	ResTruncated = fragment("res_truncated", []string{"Max"},
		"Only the first {{.Max}} commands were read; the rest of the mail was not.",
		"Seules les {{.Max}} premières commandes ont été lues ; le reste du message ne l'a pas été.",
		"Nur die ersten {{.Max}} Befehle wurden gelesen, der Rest der Mail nicht.",
		"Sono stati letti solo i primi {{.Max}} comandi; il resto della mail no.",
		"Solo se leyeron los primeros {{.Max}} comandos; el resto del correo no.")
	// ResNone: no command in the mail.
	ResNone = fragment("res_none", nil,
		"No command was found in your mail.",
		"Aucune commande n'a été trouvée dans votre message.",
		"In Ihrer Mail wurde kein Befehl gefunden.",
		"Nella tua mail non è stato trovato alcun comando.",
		"No se encontró ningún comando en tu correo.")
	// Help lists the commands.
	Help = fragment("help", []string{"List", "Request", "Join", "Leave"},
		"The commands of {{.List}}, one per line in the subject or the body of a mail to {{.Request}}:\n"+
			"  join            subscribe (or write to {{.Join}})\n"+
			"  leave           unsubscribe (or write to {{.Leave}})\n"+
			"  confirm CODE    confirm what CODE was sent for\n"+
			"  help            this text\n"+
			"Moderators: accept, reject [reason] or discard, followed by a CODE or an address,\n"+
			"with \"Approved: password\" for an address. \"end\" stops reading.",
		"Les commandes de {{.List}}, une par ligne dans l'objet ou le corps d'un message à {{.Request}} :\n"+
			"  join            s'abonner (ou écrivez à {{.Join}})\n"+
			"  leave           se désabonner (ou écrivez à {{.Leave}})\n"+
			"  confirm CODE    confirmer ce pour quoi CODE a été envoyé\n"+
			"  help            ce texte\n"+
			"Modérateurs : accept, reject [raison] ou discard, suivis d'un CODE ou d'une adresse,\n"+
			"avec « Approved: mot de passe » pour une adresse. « end » arrête la lecture.",
		"Die Befehle von {{.List}}, einer pro Zeile im Betreff oder Text einer Mail an {{.Request}}:\n"+
			"  join            eintragen (oder schreiben Sie an {{.Join}})\n"+
			"  leave           austragen (oder schreiben Sie an {{.Leave}})\n"+
			"  confirm CODE    bestätigen, wofür CODE gesendet wurde\n"+
			"  help            dieser Text\n"+
			"Moderatoren: accept, reject [Grund] oder discard, gefolgt von einem CODE oder einer Adresse,\n"+
			"mit „Approved: Passwort“ bei einer Adresse. „end“ beendet das Lesen.",
		"I comandi di {{.List}}, uno per riga nell'oggetto o nel testo di una mail a {{.Request}}:\n"+
			"  join            iscriversi (o scrivi a {{.Join}})\n"+
			"  leave           disiscriversi (o scrivi a {{.Leave}})\n"+
			"  confirm CODICE  confermare ciò per cui CODICE è stato inviato\n"+
			"  help            questo testo\n"+
			"Moderatori: accept, reject [motivo] o discard, seguiti da un CODICE o da un indirizzo,\n"+
			"con «Approved: password» per un indirizzo. «end» interrompe la lettura.",
		"Los comandos de {{.List}}, uno por línea en el asunto o el cuerpo de un correo a {{.Request}}:\n"+
			"  join            suscribirse (o escribe a {{.Join}})\n"+
			"  leave           darse de baja (o escribe a {{.Leave}})\n"+
			"  confirm CÓDIGO  confirmar aquello para lo que se envió CÓDIGO\n"+
			"  help            este texto\n"+
			"Moderadores: accept, reject [motivo] o discard, seguidos de un CÓDIGO o una dirección,\n"+
			"con «Approved: contraseña» para una dirección. «end» detiene la lectura.")
)

// The reasons a post is held, as fragments: the service stores the
// English words (which the API shows) and mails the list's language.
var (
	ReasonNotMember = fragment("reason_not_member", nil,
		"the sender is not a member of the list",
		"l'expéditeur n'est pas membre de la liste",
		"der Absender ist nicht in der Liste eingetragen",
		"il mittente non è iscritto alla lista",
		"el remitente no es miembro de la lista")
	ReasonAnnounce = fragment("reason_announce", nil,
		"the list is for announcements: only moderators post",
		"la liste sert aux annonces : seuls les modérateurs y écrivent",
		"die Liste ist für Ankündigungen: nur Moderatoren schreiben",
		"la lista è per annunci: scrivono solo i moderatori",
		"la lista es de anuncios: solo escriben los moderadores")
)
