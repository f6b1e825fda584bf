package lists

import listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"

// pageTexts are what the forms and the pages behind them say, in one
// language. %s in joinAsked, leaveAsked, unsubscribeAsk and unsubscribed
// is the list's address; in contact, the owner's address.
type pageTexts struct {
	code                                 string
	email, name, trap                    string
	subscribe, unsubscribe               string
	thanks, joinAsked, leaveAsked        string
	sorry, badEmail, badRedirect, failed string
	contact                              string
	unsubscribeTitle, unsubscribeAsk     string
	unsubscribeButton, unsubscribed      string
	badToken, tooMany                    string
}

// pages holds the texts by listsv1.Language.
var pages = map[listsv1.Language]*pageTexts{
	listsv1.Language_LANGUAGE_EN: {
		code: "en", email: "Email address", name: "Name (optional)", trap: "Leave this field empty",
		subscribe: "Subscribe", unsubscribe: "Unsubscribe",
		thanks:           "Thank you",
		joinAsked:        "Your request to join %s was received. Watch your mailbox: a message tells you what comes next.",
		leaveAsked:       "Your request to leave %s was received. If the address was subscribed, a message tells you what comes next.",
		sorry:            "Your request could not be taken",
		badEmail:         "The email address is not valid.",
		badRedirect:      "This form sends to a page the list does not allow.",
		failed:           "Something went wrong with your request.",
		contact:          "For help, write to %s.",
		unsubscribeTitle: "Unsubscribe", unsubscribeAsk: "Do you want to stop receiving the mail of %s?",
		unsubscribeButton: "Unsubscribe", unsubscribed: "You will no longer receive the mail of %s.",
		badToken: "This unsubscribe link is not valid.",
		tooMany:  "Too many requests came from your address. Please try again later.",
	},
	listsv1.Language_LANGUAGE_FR: {
		code: "fr", email: "Adresse e-mail", name: "Nom (facultatif)", trap: "Laissez ce champ vide",
		subscribe: "S’abonner", unsubscribe: "Se désabonner",
		thanks:           "Merci",
		joinAsked:        "Votre demande d’inscription à %s a bien été reçue. Surveillez votre boîte aux lettres : un message vous indiquera la suite.",
		leaveAsked:       "Votre demande de désinscription de %s a bien été reçue. Si l’adresse était inscrite, un message vous indiquera la suite.",
		sorry:            "Votre demande n’a pas pu être prise en compte",
		badEmail:         "L’adresse e-mail n’est pas valide.",
		badRedirect:      "Ce formulaire renvoie vers une page que la liste n’autorise pas.",
		failed:           "Votre demande n’a pas abouti.",
		contact:          "Pour obtenir de l’aide, écrivez à %s.",
		unsubscribeTitle: "Désinscription", unsubscribeAsk: "Voulez-vous ne plus recevoir les messages de %s ?",
		unsubscribeButton: "Se désabonner", unsubscribed: "Vous ne recevrez plus les messages de %s.",
		badToken: "Ce lien de désinscription n’est pas valide.",
		tooMany:  "Trop de demandes sont venues de votre adresse. Veuillez réessayer plus tard.",
	},
	listsv1.Language_LANGUAGE_DE: {
		code: "de", email: "E-Mail-Adresse", name: "Name (freiwillig)", trap: "Dieses Feld leer lassen",
		subscribe: "Abonnieren", unsubscribe: "Abbestellen",
		thanks:           "Vielen Dank",
		joinAsked:        "Ihre Anmeldung bei %s ist eingegangen. Bitte sehen Sie in Ihr Postfach: Eine Nachricht sagt Ihnen, wie es weitergeht.",
		leaveAsked:       "Ihre Abmeldung von %s ist eingegangen. Falls die Adresse angemeldet war, sagt Ihnen eine Nachricht, wie es weitergeht.",
		sorry:            "Ihre Anfrage konnte nicht angenommen werden",
		badEmail:         "Die E-Mail-Adresse ist ungültig.",
		badRedirect:      "Dieses Formular leitet auf eine Seite weiter, die die Liste nicht erlaubt.",
		failed:           "Bei Ihrer Anfrage ist ein Fehler aufgetreten.",
		contact:          "Hilfe erhalten Sie unter %s.",
		unsubscribeTitle: "Abbestellen", unsubscribeAsk: "Möchten Sie die Nachrichten von %s nicht mehr erhalten?",
		unsubscribeButton: "Abbestellen", unsubscribed: "Sie erhalten die Nachrichten von %s nicht mehr.",
		badToken: "Dieser Abmeldelink ist ungültig.",
		tooMany:  "Von Ihrer Adresse kamen zu viele Anfragen. Bitte versuchen Sie es später erneut.",
	},
	listsv1.Language_LANGUAGE_IT: {
		code: "it", email: "Indirizzo e-mail", name: "Nome (facoltativo)", trap: "Lascia vuoto questo campo",
		subscribe: "Iscriviti", unsubscribe: "Annulla l’iscrizione",
		thanks:           "Grazie",
		joinAsked:        "La tua richiesta di iscrizione a %s è stata ricevuta. Controlla la tua casella: un messaggio ti dirà come procedere.",
		leaveAsked:       "La tua richiesta di cancellazione da %s è stata ricevuta. Se l’indirizzo era iscritto, un messaggio ti dirà come procedere.",
		sorry:            "Non è stato possibile accogliere la richiesta",
		badEmail:         "L’indirizzo e-mail non è valido.",
		badRedirect:      "Questo modulo rimanda a una pagina che la lista non consente.",
		failed:           "Si è verificato un problema con la tua richiesta.",
		contact:          "Per assistenza, scrivi a %s.",
		unsubscribeTitle: "Annulla l’iscrizione", unsubscribeAsk: "Vuoi smettere di ricevere i messaggi di %s?",
		unsubscribeButton: "Annulla l’iscrizione", unsubscribed: "Non riceverai più i messaggi di %s.",
		badToken: "Questo link di cancellazione non è valido.",
		tooMany:  "Dal tuo indirizzo sono arrivate troppe richieste. Riprova più tardi.",
	},
	listsv1.Language_LANGUAGE_ES: {
		code: "es", email: "Correo electrónico", name: "Nombre (opcional)", trap: "Deje este campo vacío",
		subscribe: "Suscribirse", unsubscribe: "Darse de baja",
		thanks:           "Gracias",
		joinAsked:        "Hemos recibido su solicitud de suscripción a %s. Revise su buzón: un mensaje le indicará los siguientes pasos.",
		leaveAsked:       "Hemos recibido su solicitud de baja de %s. Si la dirección estaba suscrita, un mensaje le indicará los siguientes pasos.",
		sorry:            "No se ha podido atender su solicitud",
		badEmail:         "La dirección de correo no es válida.",
		badRedirect:      "Este formulario envía a una página que la lista no permite.",
		failed:           "Se ha producido un problema con su solicitud.",
		contact:          "Si necesita ayuda, escriba a %s.",
		unsubscribeTitle: "Darse de baja", unsubscribeAsk: "¿Desea dejar de recibir los mensajes de %s?",
		unsubscribeButton: "Darse de baja", unsubscribed: "Ya no recibirá los mensajes de %s.",
		badToken: "Este enlace de baja no es válido.",
		tooMany:  "Han llegado demasiadas solicitudes desde su dirección. Inténtelo de nuevo más tarde.",
	},
}

// texts returns the texts of a list's language, English for one unknown.
func texts(language int16) *pageTexts {
	if t, ok := pages[listsv1.Language(language)]; ok {
		return t
	}
	return pages[listsv1.Language_LANGUAGE_EN]
}
