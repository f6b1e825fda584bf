package letters

// The letters of joining and leaving. Those answering a request go to the
// address the request names, never to whoever made it: a stranger asking
// for someone else's address learns nothing, and the address's owner
// reads what was asked in their name.

// ConfirmJoin asks Email to confirm a subscription. It is sent from
// Confirm, the list's -confirm+TOKEN address, and its subject holds
// "confirm TOKEN": a plain reply confirms, whichever address it reaches.
var ConfirmJoin = Kind{
	Name: "confirm_join",
	Keys: []string{"List", "Email", "Token", "Confirm", "Expire"},
	Text: map[Lang]Text{
		EN: {"Confirm your subscription to {{.List}}: confirm {{.Token}}",
			"Someone, perhaps you, asked to subscribe {{.Email}} to {{.List}}.\n\n" +
				"To confirm, reply to this mail without changing its subject, or write to\n  {{.Confirm}}\n\n" +
				"If you did not ask, ignore this mail: nothing happens. The request expires on {{.Expire}}.\n"},
		FR: {"Confirmez votre abonnement à {{.List}} : confirm {{.Token}}",
			"Quelqu'un, peut-être vous, a demandé l'abonnement de {{.Email}} à {{.List}}.\n\n" +
				"Pour confirmer, répondez à ce message sans en changer l'objet, ou écrivez à\n  {{.Confirm}}\n\n" +
				"Si vous n'avez rien demandé, ignorez ce message : rien ne se passera. La demande expire le {{.Expire}}.\n"},
		DE: {"Bestätigen Sie Ihr Abonnement von {{.List}}: confirm {{.Token}}",
			"Jemand, vielleicht Sie, hat beantragt, {{.Email}} in die Liste {{.List}} einzutragen.\n\n" +
				"Zur Bestätigung antworten Sie auf diese Mail, ohne den Betreff zu ändern, oder schreiben Sie an\n  {{.Confirm}}\n\n" +
				"Wenn Sie das nicht beantragt haben, ignorieren Sie diese Mail: es geschieht nichts. Der Antrag verfällt am {{.Expire}}.\n"},
		IT: {"Conferma la tua iscrizione a {{.List}}: confirm {{.Token}}",
			"Qualcuno, forse tu, ha chiesto di iscrivere {{.Email}} a {{.List}}.\n\n" +
				"Per confermare, rispondi a questa mail senza cambiarne l'oggetto, oppure scrivi a\n  {{.Confirm}}\n\n" +
				"Se non l'hai chiesto, ignora questa mail: non succederà nulla. La richiesta scade il {{.Expire}}.\n"},
		ES: {"Confirma tu suscripción a {{.List}}: confirm {{.Token}}",
			"Alguien, quizá tú, pidió suscribir {{.Email}} a {{.List}}.\n\n" +
				"Para confirmar, responde a este correo sin cambiar el asunto, o escribe a\n  {{.Confirm}}\n\n" +
				"Si no lo pediste, ignora este correo: no pasará nada. La solicitud caduca el {{.Expire}}.\n"},
	},
}

// ConfirmLeave asks Email to confirm leaving, as ConfirmJoin does.
var ConfirmLeave = Kind{
	Name: "confirm_leave",
	Keys: []string{"List", "Email", "Token", "Confirm", "Expire"},
	Text: map[Lang]Text{
		EN: {"Confirm you leave {{.List}}: confirm {{.Token}}",
			"Someone, perhaps you, asked to unsubscribe {{.Email}} from {{.List}}.\n\n" +
				"To confirm, reply to this mail without changing its subject, or write to\n  {{.Confirm}}\n\n" +
				"If you did not ask, ignore this mail: you stay subscribed. The request expires on {{.Expire}}.\n"},
		FR: {"Confirmez votre désabonnement de {{.List}} : confirm {{.Token}}",
			"Quelqu'un, peut-être vous, a demandé le désabonnement de {{.Email}} de {{.List}}.\n\n" +
				"Pour confirmer, répondez à ce message sans en changer l'objet, ou écrivez à\n  {{.Confirm}}\n\n" +
				"Si vous n'avez rien demandé, ignorez ce message : vous restez abonné. La demande expire le {{.Expire}}.\n"},
		DE: {"Bestätigen Sie Ihre Abmeldung von {{.List}}: confirm {{.Token}}",
			"Jemand, vielleicht Sie, hat beantragt, {{.Email}} aus der Liste {{.List}} auszutragen.\n\n" +
				"Zur Bestätigung antworten Sie auf diese Mail, ohne den Betreff zu ändern, oder schreiben Sie an\n  {{.Confirm}}\n\n" +
				"Wenn Sie das nicht beantragt haben, ignorieren Sie diese Mail: Sie bleiben eingetragen. Der Antrag verfällt am {{.Expire}}.\n"},
		IT: {"Conferma la tua disiscrizione da {{.List}}: confirm {{.Token}}",
			"Qualcuno, forse tu, ha chiesto di disiscrivere {{.Email}} da {{.List}}.\n\n" +
				"Per confermare, rispondi a questa mail senza cambiarne l'oggetto, oppure scrivi a\n  {{.Confirm}}\n\n" +
				"Se non l'hai chiesto, ignora questa mail: resti iscritto. La richiesta scade il {{.Expire}}.\n"},
		ES: {"Confirma que dejas {{.List}}: confirm {{.Token}}",
			"Alguien, quizá tú, pidió dar de baja {{.Email}} de {{.List}}.\n\n" +
				"Para confirmar, responde a este correo sin cambiar el asunto, o escribe a\n  {{.Confirm}}\n\n" +
				"Si no lo pediste, ignora este correo: sigues suscrito. La solicitud caduca el {{.Expire}}.\n"},
	},
}

// AlreadyMember answers a request to join for an address that is a
// member: to that address, so the requester learns nothing.
var AlreadyMember = Kind{
	Name: "already_member",
	Keys: []string{"List", "Email", "Leave"},
	Text: map[Lang]Text{
		EN: {"You are subscribed to {{.List}} already",
			"Someone, perhaps you, asked to subscribe {{.Email}} to {{.List}}. This address is subscribed already: nothing changed.\n\n" +
				"To leave the list, write to {{.Leave}}.\n"},
		FR: {"Vous êtes déjà abonné à {{.List}}",
			"Quelqu'un, peut-être vous, a demandé l'abonnement de {{.Email}} à {{.List}}. Cette adresse est déjà abonnée : rien n'a changé.\n\n" +
				"Pour quitter la liste, écrivez à {{.Leave}}.\n"},
		DE: {"Sie sind bereits in {{.List}} eingetragen",
			"Jemand, vielleicht Sie, hat beantragt, {{.Email}} in die Liste {{.List}} einzutragen. Diese Adresse ist bereits eingetragen: nichts wurde geändert.\n\n" +
				"Um die Liste zu verlassen, schreiben Sie an {{.Leave}}.\n"},
		IT: {"Sei già iscritto a {{.List}}",
			"Qualcuno, forse tu, ha chiesto di iscrivere {{.Email}} a {{.List}}. Questo indirizzo è già iscritto: non è cambiato nulla.\n\n" +
				"Per lasciare la lista, scrivi a {{.Leave}}.\n"},
		ES: {"Ya estás suscrito a {{.List}}",
			"Alguien, quizá tú, pidió suscribir {{.Email}} a {{.List}}. Esta dirección ya está suscrita: no ha cambiado nada.\n\n" +
				"Para dejar la lista, escribe a {{.Leave}}.\n"},
	},
}

// NotMember answers a request to leave for an address that is no member.
var NotMember = Kind{
	Name: "not_member",
	Keys: []string{"List", "Email"},
	Text: map[Lang]Text{
		EN: {"You are not subscribed to {{.List}}",
			"Someone, perhaps you, asked to unsubscribe {{.Email}} from {{.List}}. This address is not subscribed: nothing changed.\n"},
		FR: {"Vous n'êtes pas abonné à {{.List}}",
			"Quelqu'un, peut-être vous, a demandé le désabonnement de {{.Email}} de {{.List}}. Cette adresse n'est pas abonnée : rien n'a changé.\n"},
		DE: {"Sie sind nicht in {{.List}} eingetragen",
			"Jemand, vielleicht Sie, hat beantragt, {{.Email}} aus der Liste {{.List}} auszutragen. Diese Adresse ist nicht eingetragen: nichts wurde geändert.\n"},
		IT: {"Non sei iscritto a {{.List}}",
			"Qualcuno, forse tu, ha chiesto di disiscrivere {{.Email}} da {{.List}}. Questo indirizzo non è iscritto: non è cambiato nulla.\n"},
		ES: {"No estás suscrito a {{.List}}",
			"Alguien, quizá tú, pidió dar de baja {{.Email}} de {{.List}}. Esta dirección no está suscrita: no ha cambiado nada.\n"},
	},
}

// JoinPending tells Email their subscription awaits a moderator.
var JoinPending = Kind{
	Name: "join_pending",
	Keys: []string{"List", "Email"},
	Text: map[Lang]Text{
		EN: {"Your subscription to {{.List}} awaits approval",
			"The subscription of {{.Email}} to {{.List}} awaits a moderator's approval. You will get a mail once they decide.\n"},
		FR: {"Votre abonnement à {{.List}} attend une approbation",
			"L'abonnement de {{.Email}} à {{.List}} attend l'approbation d'un modérateur. Vous recevrez un message dès sa décision.\n"},
		DE: {"Ihr Abonnement von {{.List}} wartet auf Freigabe",
			"Die Eintragung von {{.Email}} in {{.List}} wartet auf die Freigabe durch einen Moderator. Sie erhalten eine Mail, sobald entschieden ist.\n"},
		IT: {"La tua iscrizione a {{.List}} attende approvazione",
			"L'iscrizione di {{.Email}} a {{.List}} attende l'approvazione di un moderatore. Riceverai una mail appena avrà deciso.\n"},
		ES: {"Tu suscripción a {{.List}} espera aprobación",
			"La suscripción de {{.Email}} a {{.List}} espera la aprobación de un moderador. Recibirás un correo en cuanto decida.\n"},
	},
}

// JoinRejected tells Email a moderator refused their subscription;
// Reason may be empty.
var JoinRejected = Kind{
	Name: "join_rejected",
	Keys: []string{"List", "Email", "Reason"},
	Text: map[Lang]Text{
		EN: {"Your subscription to {{.List}} was declined",
			"A moderator of {{.List}} declined the subscription of {{.Email}}.\n{{if .Reason}}\nTheir reason:\n\n{{.Reason}}\n{{end}}"},
		FR: {"Votre abonnement à {{.List}} a été refusé",
			"Un modérateur de {{.List}} a refusé l'abonnement de {{.Email}}.\n{{if .Reason}}\nSa raison :\n\n{{.Reason}}\n{{end}}"},
		DE: {"Ihr Abonnement von {{.List}} wurde abgelehnt",
			"Ein Moderator von {{.List}} hat die Eintragung von {{.Email}} abgelehnt.\n{{if .Reason}}\nBegründung:\n\n{{.Reason}}\n{{end}}"},
		IT: {"La tua iscrizione a {{.List}} è stata rifiutata",
			"Un moderatore di {{.List}} ha rifiutato l'iscrizione di {{.Email}}.\n{{if .Reason}}\nLa sua motivazione:\n\n{{.Reason}}\n{{end}}"},
		ES: {"Tu suscripción a {{.List}} fue rechazada",
			"Un moderador de {{.List}} rechazó la suscripción de {{.Email}}.\n{{if .Reason}}\nSu motivo:\n\n{{.Reason}}\n{{end}}"},
	},
}

// Welcome greets a new member; Message is the list's welcome message or
// a moderator's notice, and may be empty.
var Welcome = Kind{
	Name: "welcome",
	Keys: []string{"List", "Email", "Message", "Post", "Leave"},
	Text: map[Lang]Text{
		EN: {"Welcome to {{.List}}",
			"{{.Email}} is now subscribed to {{.List}}.\n{{if .Message}}\n{{.Message}}\n{{end}}\n" +
				"To write to the list, send your mail to {{.Post}}.\nTo leave it, write to {{.Leave}}.\n"},
		FR: {"Bienvenue sur {{.List}}",
			"{{.Email}} est maintenant abonné à {{.List}}.\n{{if .Message}}\n{{.Message}}\n{{end}}\n" +
				"Pour écrire à la liste, envoyez votre message à {{.Post}}.\nPour la quitter, écrivez à {{.Leave}}.\n"},
		DE: {"Willkommen bei {{.List}}",
			"{{.Email}} ist jetzt in {{.List}} eingetragen.\n{{if .Message}}\n{{.Message}}\n{{end}}\n" +
				"Um an die Liste zu schreiben, senden Sie Ihre Mail an {{.Post}}.\nUm sie zu verlassen, schreiben Sie an {{.Leave}}.\n"},
		IT: {"Benvenuto in {{.List}}",
			"{{.Email}} è ora iscritto a {{.List}}.\n{{if .Message}}\n{{.Message}}\n{{end}}\n" +
				"Per scrivere alla lista, invia la tua mail a {{.Post}}.\nPer lasciarla, scrivi a {{.Leave}}.\n"},
		ES: {"Bienvenido a {{.List}}",
			"{{.Email}} está ahora suscrito a {{.List}}.\n{{if .Message}}\n{{.Message}}\n{{end}}\n" +
				"Para escribir a la lista, envía tu correo a {{.Post}}.\nPara dejarla, escribe a {{.Leave}}.\n"},
	},
}

// Goodbye sees a member off; Message is the list's goodbye message and
// may be empty.
var Goodbye = Kind{
	Name: "goodbye",
	Keys: []string{"List", "Email", "Message"},
	Text: map[Lang]Text{
		EN: {"You left {{.List}}",
			"{{.Email}} is no longer subscribed to {{.List}}; the address was erased from it.\n{{if .Message}}\n{{.Message}}\n{{end}}"},
		FR: {"Vous avez quitté {{.List}}",
			"{{.Email}} n'est plus abonné à {{.List}} ; l'adresse en a été effacée.\n{{if .Message}}\n{{.Message}}\n{{end}}"},
		DE: {"Sie haben {{.List}} verlassen",
			"{{.Email}} ist nicht mehr in {{.List}} eingetragen; die Adresse wurde gelöscht.\n{{if .Message}}\n{{.Message}}\n{{end}}"},
		IT: {"Hai lasciato {{.List}}",
			"{{.Email}} non è più iscritto a {{.List}}; l'indirizzo è stato cancellato.\n{{if .Message}}\n{{.Message}}\n{{end}}"},
		ES: {"Has dejado {{.List}}",
			"{{.Email}} ya no está suscrito a {{.List}}; la dirección se ha borrado.\n{{if .Message}}\n{{.Message}}\n{{end}}"},
	},
}

// ModerateJoin asks the moderators to decide on a subscription, with the
// mailto: links of their answers (commands.DecisionLinks).
var ModerateJoin = Kind{
	Name: "moderate_join",
	Keys: []string{"List", "Email", "Accept", "Reject", "Discard", "Token", "Expire"},
	Text: map[Lang]Text{
		EN: {"{{.List}}: {{.Email}} asks to join",
			"{{.Email}} asks to join {{.List}}.\n\n" +
				"To accept, write (or click):\n  {{.Accept}}\n" +
				"To decline, telling them why in the body of your mail:\n  {{.Reject}}\n" +
				"To drop the request without a word:\n  {{.Discard}}\n\n" +
				"Or reply to {{.List}}'s -request address with \"accept {{.Token}}\", \"reject {{.Token}} reason\" or \"discard {{.Token}}\".\n" +
				"These links work until {{.Expire}}.\n"},
		FR: {"{{.List}} : {{.Email}} demande à s'abonner",
			"{{.Email}} demande à s'abonner à {{.List}}.\n\n" +
				"Pour accepter, écrivez (ou cliquez) :\n  {{.Accept}}\n" +
				"Pour refuser en donnant la raison dans le corps de votre message :\n  {{.Reject}}\n" +
				"Pour abandonner la demande sans rien dire :\n  {{.Discard}}\n\n" +
				"Ou répondez à l'adresse -request de {{.List}} avec « accept {{.Token}} », « reject {{.Token}} raison » ou « discard {{.Token}} ».\n" +
				"Ces liens fonctionnent jusqu'au {{.Expire}}.\n"},
		DE: {"{{.List}}: {{.Email}} möchte sich eintragen",
			"{{.Email}} möchte sich in {{.List}} eintragen.\n\n" +
				"Zum Annehmen schreiben Sie (oder klicken Sie):\n  {{.Accept}}\n" +
				"Zum Ablehnen, mit der Begründung im Text Ihrer Mail:\n  {{.Reject}}\n" +
				"Um den Antrag kommentarlos zu verwerfen:\n  {{.Discard}}\n\n" +
				"Oder antworten Sie an die -request-Adresse von {{.List}} mit „accept {{.Token}}“, „reject {{.Token}} Grund“ oder „discard {{.Token}}“.\n" +
				"Diese Links gelten bis {{.Expire}}.\n"},
		IT: {"{{.List}}: {{.Email}} chiede di iscriversi",
			"{{.Email}} chiede di iscriversi a {{.List}}.\n\n" +
				"Per accettare, scrivi (o fai clic):\n  {{.Accept}}\n" +
				"Per rifiutare, spiegando il motivo nel testo della tua mail:\n  {{.Reject}}\n" +
				"Per scartare la richiesta senza avvisare:\n  {{.Discard}}\n\n" +
				"Oppure rispondi all'indirizzo -request di {{.List}} con «accept {{.Token}}», «reject {{.Token}} motivo» o «discard {{.Token}}».\n" +
				"Questi link valgono fino al {{.Expire}}.\n"},
		ES: {"{{.List}}: {{.Email}} pide suscribirse",
			"{{.Email}} pide suscribirse a {{.List}}.\n\n" +
				"Para aceptar, escribe (o haz clic):\n  {{.Accept}}\n" +
				"Para rechazar, explicando el motivo en el cuerpo de tu correo:\n  {{.Reject}}\n" +
				"Para descartar la solicitud sin avisar:\n  {{.Discard}}\n\n" +
				"O responde a la dirección -request de {{.List}} con «accept {{.Token}}», «reject {{.Token}} motivo» o «discard {{.Token}}».\n" +
				"Estos enlaces valen hasta el {{.Expire}}.\n"},
	},
}
